"""What a run leaves for people: history.jsonl (one row per loop, survives restarts) and a PNG plot of
the stage schedule and the training curves. Paths may be local or gs:// (tf.io.gfile)."""

import json
import os

import tensorflow as tf

HISTORY_FILE = "history.jsonl"
PLOT_FILE = "training.png"


def read(model_dir, name=HISTORY_FILE):
  path = os.path.join(model_dir, name)
  if not tf.io.gfile.exists(path):
    return []
  with tf.io.gfile.GFile(path) as f:
    return [json.loads(line) for line in f.read().splitlines() if line.strip()]


def write(model_dir, rows, name=HISTORY_FILE):
  """Writes all rows: object stores such as GCS cannot append, so the file is rewritten whole."""
  with tf.io.gfile.GFile(os.path.join(model_dir, name), "w") as f:
    f.write("".join(json.dumps(row) + "\n" for row in rows))


def plot(model_dir, stages, evals=()):
  """Writes training.png: image size and regularization per stage, and loss / accuracy over steps."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  rows = read(model_dir)
  figure, (schedule_axis, loss_axis) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
  bounds = [s.start_step for s in stages] + [stages[-1].end_step]
  schedule_axis.stairs([s.image_size for s in stages], bounds, label="image size (px)", color="tab:blue")
  schedule_axis.set_ylabel("image size (px)")
  regularization = schedule_axis.twinx()
  regularization.stairs([s.randaug_magnitude for s in stages], bounds, label="RandAugment m", color="tab:orange")
  regularization.stairs([10 * s.dropout_rate for s in stages], bounds, label="10 x dropout", color="tab:green")
  regularization.stairs([10 * s.mixup_alpha for s in stages], bounds, label="10 x mixup alpha", color="tab:red")
  regularization.set_ylabel("regularization")
  lines = schedule_axis.get_legend_handles_labels()[0] + regularization.get_legend_handles_labels()[0]
  schedule_axis.legend(lines, [line.get_label() for line in lines], loc="upper left", fontsize=8)
  schedule_axis.set_title("Progressive learning: stages")
  if rows:
    steps = [row["step"] for row in rows]
    loss_axis.plot(steps, [row["loss"] for row in rows], label="train loss", color="tab:blue")
    accuracy = loss_axis.twinx()
    accuracy.plot(steps, [row["train_top1"] for row in rows], label="train top-1", color="tab:orange", alpha=0.7)
    if evals:
      accuracy.plot([e["step"] for e in evals], [e["top1"] for e in evals], "o-", label="eval top-1 (EMA)",
                    color="tab:green")
    accuracy.set_ylabel("accuracy")
    accuracy.set_ylim(0, 1)
    accuracy.legend(loc="upper right", fontsize=8)
  loss_axis.set_xlabel("step")
  loss_axis.set_ylabel("loss")
  loss_axis.legend(loc="upper left", fontsize=8)
  figure.tight_layout()
  path = os.path.join(model_dir, PLOT_FILE)
  with tf.io.gfile.GFile(path, "wb") as f:
    figure.savefig(f, format="png", dpi=100)
  plt.close(figure)
  return path
