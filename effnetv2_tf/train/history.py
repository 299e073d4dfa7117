"""What a run leaves for people: history.jsonl (one row per loop, survives restarts) and a PNG plot of
the stage schedule and the training curves."""

import json
import pathlib

HISTORY_FILE = "history.jsonl"
PLOT_FILE = "training.png"


def append(model_dir, row):
  with open(pathlib.Path(model_dir) / HISTORY_FILE, "a") as f:
    f.write(json.dumps(row) + "\n")


def read(model_dir):
  path = pathlib.Path(model_dir) / HISTORY_FILE
  if not path.exists():
    return []
  return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


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
  path = pathlib.Path(model_dir) / PLOT_FILE
  figure.savefig(path, dpi=100)
  plt.close(figure)
  return path
