"""What a run tells people while it trains: the console (stage lines, a progress bar), TensorBoard, the
JSONL logs (history.jsonl: one row per host loop; eval.jsonl: one row per eval, both survive restarts) and
a PNG plot of the stage schedule and the curves. Only the chief worker writes files."""

import io
import json
import logging
import sys
import time

import keras
import tensorflow as tf

from effnetv2_tf.run_dir import write_atomically
from effnetv2_tf.train.evaluation import accuracy_text


def read_rows(path):
  """The rows of a JSONL log ([] when missing). A damaged line (a write cut short by a full disk or a
  kill) is dropped with a warning rather than blocking a resume."""
  if not tf.io.gfile.exists(path):
    return []
  rows = []
  with tf.io.gfile.GFile(path) as f:
    for number, line in enumerate(f.read().splitlines(), start=1):
      if not line.strip():
        continue
      try:
        rows.append(json.loads(line))
      except json.JSONDecodeError:
        logging.warning("%s line %d is damaged and was dropped", path, number)
  return rows


def write_rows(path, rows):
  """Writes all rows: object stores such as GCS cannot append, so the file is replaced whole."""
  write_atomically(path, "".join(json.dumps(row) + "\n" for row in rows))


def figure_of(stages, rows, evals=()):
  """The run's figure: the image size per stage and the learning rate over steps; the regularization per stage
  where a stage has any; loss and accuracy over steps. Stages are drawn as steps without edges to 0."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  regularized = any(s.randaug_magnitude or s.dropout_rate or s.mixup_alpha for s in stages)
  figure, axes = plt.subplots(3 if regularized else 2, 1, figsize=(8, 9 if regularized else 7), sharex=True)
  schedule_axis, loss_axis = axes[0], axes[-1]
  bounds = [s.start_step for s in stages] + [stages[-1].end_step]
  sizes = [s.image_size for s in stages]
  schedule_axis.stairs(sizes, bounds, baseline=None, label="image size (px)", color="tab:blue")
  schedule_axis.set_ylim(0, max(sizes) * 1.2)
  schedule_axis.set_ylabel("image size (px)")
  schedule_axis.set_title(f"{len(stages)} progressive stages" if len(stages) > 1 else
                          f"One stage at {sizes[0]} px")
  handles = schedule_axis.get_legend_handles_labels()[0]
  if rows and all("lr" in row for row in rows):
    learning_rate = schedule_axis.twinx()
    learning_rate.plot([row["step"] for row in rows], [row["lr"] for row in rows], label="learning rate",
                       color="tab:purple")
    learning_rate.set_ylabel("learning rate")
    learning_rate.set_ylim(bottom=0)
    handles += learning_rate.get_legend_handles_labels()[0]
  schedule_axis.legend(handles, [handle.get_label() for handle in handles], loc="lower right", fontsize=8)
  if regularized:
    regularization = axes[1]
    for values, label, color in (([s.randaug_magnitude for s in stages], "RandAugment magnitude", "tab:orange"),
                                 ([10 * s.dropout_rate for s in stages], "10 x dropout", "tab:green"),
                                 ([10 * s.mixup_alpha for s in stages], "10 x mixup alpha", "tab:red")):
      if any(values):  # what the run did not use is left out
        regularization.stairs(values, bounds, baseline=None, label=label, color=color)
    regularization.set_ylim(bottom=0)
    regularization.set_ylabel("regularization")
    regularization.legend(loc="upper left", fontsize=8)
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
  return figure


def plot(path, stages, rows, evals=()):
  """Writes the run's figure (figure_of) as a PNG; returns `path`."""
  import matplotlib.pyplot as plt
  figure = figure_of(stages, rows, evals)
  png = io.BytesIO()
  figure.savefig(png, format="png", dpi=100)
  plt.close(figure)
  write_atomically(path, png.getvalue())
  return path


# Without a terminal (a redirected log), one plain progress line at most this often, and none of the
# progress bar's colour codes and carriage returns.
PLAIN_PROGRESS_SECONDS = 30.0
DAY_SECONDS = 24 * 3600


def augmentation(policy, magnitude):
  """How a stage augments its images, in words: "RandAugment 5.00", "AutoAugment" or "no augmentation"."""
  return {"randaug": f"RandAugment {magnitude:.2f}", "autoaug": "AutoAugment"}.get(policy, "no augmentation")


def _duration(seconds):
  minutes, seconds = divmod(int(seconds), 60)
  hours, minutes = divmod(minutes, 60)
  return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class RunLog:
  """The logs of one run in `run_dir` (a RunDir); `is_chief` says whether this process writes files;
  `interactive` (default: stdout is a terminal) picks the progress bar over plain progress lines;
  `augment_policy` (the config's augment.policy) names the stages' augmentation."""

  def __init__(self, run_dir, is_chief=True, interactive=None, augment_policy="randaug", num_classes=1000):
    self.run_dir = run_dir
    self.num_classes = num_classes
    self.augment_policy = augment_policy
    self.is_chief = is_chief
    self.interactive = sys.stdout.isatty() if interactive is None else interactive
    self.rows = read_rows(run_dir.history_file)
    self.evals = read_rows(run_dir.eval_file)
    self._writer = None
    self._progress = None
    self._stage_clock = None  # (start time, start step) of the stage's progress
    self._last_plain = 0.0
    self._run_estimated = False

  @property
  def writer(self):
    if self._writer is None and self.is_chief:
      self._writer = tf.summary.create_file_writer(self.run_dir.tensorboard)
    return self._writer

  def resume_at(self, step):
    """Forgets what was logged after `step`: those steps are about to be trained again."""
    self.rows = [row for row in self.rows if row["step"] <= step]
    self.evals = [result for result in self.evals if result["step"] <= step]

  def _scalars(self, step, values):
    if self.writer is not None:
      with self.writer.as_default(step=step):
        for key, value in values.items():
          tf.summary.scalar(key, value)

  def stage_started(self, stage, num_stages, step, run_seconds_left=None):
    """The stage's line (with the run's time left, once a pace is known) and a new progress bar."""
    left = f" (run: about {_duration(run_seconds_left)} left)" if run_seconds_left is not None else ""
    print(f"stage {stage.index + 1}/{num_stages}: {stage.image_size} px, dropout {stage.dropout_rate:.3f}, "
          f"{augmentation(self.augment_policy, stage.randaug_magnitude)}, mixup {stage.mixup_alpha:.3f}, "
          f"cutmix {stage.cutmix_alpha:.3f}, steps {step}-{stage.end_step}{left}", flush=True)
    self._stage_clock = (time.monotonic(), step)
    self._last_plain = time.monotonic()
    if self.interactive:
      self._progress = keras.utils.Progbar(stage.end_step - stage.start_step,
                                           stateful_metrics=["loss", "top1", "img/s", "lr"])
      self._progress.update(step - stage.start_step)

  def stage_refitted(self, stage, line):
    """The stage's new length (train.time_budget refitted the run) and the line saying how."""
    if self.interactive:
      print(flush=True)  # below the progress bar
      self._progress.target = stage.end_step - stage.start_step
    print(line, flush=True)

  def host_loop(self, row, stage, stage_images_per_second=None, run_seconds_left=None, stage_seconds_left=None):
    """One host loop's row (step, loss, train_top1, lr, images_per_second, ...): progress, JSONL, TensorBoard.
    The console shows the stage's average rate and the stage's and run's time left once the trainer knows them
    (at the pace of the steps, without the first loop's tracing; until then, the stage's elapsed time per step)."""
    rate = row["images_per_second"] if stage_images_per_second is None else stage_images_per_second
    if run_seconds_left is not None and not self._run_estimated:
      self._run_estimated = True
      self._print_run_estimate(run_seconds_left)
    if self.interactive:
      self._progress.update(row["step"] - stage.start_step, [
          ("loss", row["loss"]), ("top1", row["train_top1"]), ("img/s", rate), ("lr", row["lr"])])
    elif time.monotonic() - self._last_plain >= PLAIN_PROGRESS_SECONDS or row["step"] == stage.end_step:
      self._print_plain(row, stage, rate, run_seconds_left, stage_seconds_left)
    if self.is_chief:
      self.rows.append(row)
      write_rows(self.run_dir.history_file, self.rows)
      self._scalars(row["step"], {key: value for key, value in row.items() if key != "step"})

  def _print_plain(self, row, stage, images_per_second, run_seconds_left, stage_seconds_left):
    started, first_step = self._stage_clock
    elapsed = time.monotonic() - started
    remaining = stage_seconds_left if stage_seconds_left is not None else (
        elapsed / max(row["step"] - first_step, 1) * (stage.end_step - row["step"]))
    run = f", run {_duration(run_seconds_left)} left" if run_seconds_left is not None else ""
    print(f"  step {row['step']}/{stage.end_step}: loss {row['loss']:.4f}, top-1 {row['train_top1']:.3f}, "
          f"{images_per_second:.1f} img/s, lr {row['lr']:.4g}, stage {_duration(elapsed)} elapsed, "
          f"{_duration(remaining)} left{run}", flush=True)
    self._last_plain = time.monotonic()

  def _print_run_estimate(self, seconds):
    """Once per process: the run's time left, and a warning when it is more than a day."""
    if self.interactive:
      print(flush=True)  # below the progress bar
    print(f"run: about {_duration(seconds)} of training left at the paces measured so far", flush=True)
    if seconds > DAY_SECONDS:
      print(f"warning: at this pace the run takes about {seconds / DAY_SECONDS:.1f} more days on this machine: "
            "fewer train.epochs, a smaller model or a faster machine (python main.py --doctor times one step)",
            file=sys.stderr, flush=True)

  def stage_finished(self, stage, step, seconds, compile_seconds, compiled_with_xla, records_skipped, planned=None):
    """`planned`: the seconds the run's plan (main.py --plan) gave the stage, or None."""
    plan = f" (planned {planned:.1f} s)" if planned is not None else ""
    print(f"stage {stage.index + 1} done in {seconds:.1f} s{plan}, of which {compile_seconds:.1f} s tracing"
          f"{' and XLA compiling' if compiled_with_xla else ''} the step (records skipped so far: "
          f"{records_skipped})", flush=True)
    self._scalars(step, {"stage_compile_seconds": compile_seconds, "stage_seconds": seconds})

  def evaluation(self, result):
    self.evals.append(result)
    print(f"eval at step {result['step']}: {accuracy_text(result, self.num_classes)} ({result['examples']} images, "
          f"{'EMA' if result['ema'] else 'raw'} weights)", flush=True)
    if self.is_chief:
      write_rows(self.run_dir.eval_file, self.evals)
      self._scalars(result["step"], {"eval/top1": result["top1"], "eval/top5": result["top5"]})

  def flush(self):
    if self._writer is not None:
      self._writer.flush()

  def plot(self, stages):
    """Writes training.png (chief only); returns its path or None."""
    if not self.is_chief:
      return None
    return plot(self.run_dir.plot_file, stages, self.rows, self.evals)
