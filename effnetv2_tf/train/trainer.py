"""The training loop: progressive stages on any tf.distribute strategy, with EMA, checkpoints and eval.

Sections: set-up (model, optimizer, EMA in the strategy's scope), data (one dataset per stage), the
step (strategy.run inside a tf.function that runs steps_per_loop steps), checkpoints (exact resume at
any step, data iterator included), eval (top-1/top-5 with the EMA weights) and logs (console progress
bar, TensorBoard, history.jsonl and a PNG plot).
"""

import math
import os
import time

import keras
import tensorflow as tf
import yaml

from effnetv2_tf.data.pipeline import RecordCounts, build_dataset
from effnetv2_tf.data.sources import TFDSSource, TFRecordSource
from effnetv2_tf.model import get_model_spec
from effnetv2_tf.train import history
from effnetv2_tf.train.preemption import Preempted, StopSignals
from effnetv2_tf.train.schedule import ProgressiveSchedule
from effnetv2_tf.train.state import TrainState, compute_dtype
from effnetv2_tf.weights.warm_start import warm_start

CONFIG_FILE = "config.yaml"
CHECKPOINT_DIR = "checkpoints"
EVAL_FILE = "eval.jsonl"


class CheckpointMismatchError(ValueError):
  """model_dir holds the checkpoints of another model."""


def _model_identity(config):
  """What must match for a checkpoint to load: the architecture and the classifier."""
  model = config["model"]
  return {key: model[key] for key in ("name", "width", "depth", "num_classes")}


def data_sources(config, data_dir):
  """(train source, eval source) of the config, reading from data_dir."""
  data = config.data
  if data.source == "tfds":
    return (TFDSSource(data.tfds_name, data.train_split, data_dir),
            TFDSSource(data.tfds_name, data.eval_split, data_dir))
  if data.source != "tfrecord":
    raise ValueError(f"Unknown data.source {data.source!r}; expected tfrecord or tfds.")
  if not data_dir:
    raise FileNotFoundError("No --data_dir given: point it at a folder of TFRecords (or data.source=tfds).")
  return (TFRecordSource(os.path.join(data_dir, data.train_files), data.label_offset),
          TFRecordSource(os.path.join(data_dir, data.eval_files), data.label_offset))


def _compile_seconds(loop_seconds):
  """What the first host loop of a stage took beyond its steps at the later loops' pace: the trace (and the
  XLA compile) of the step, or about 0 when the stage reuses the previous stage's trace."""
  (first_steps, first), later = loop_seconds[0], loop_seconds[1:]
  if not later:
    return first
  pace = sum(seconds for _, seconds in later) / sum(steps for steps, _ in later)
  return max(first - first_steps * pace, 0.0)


def run_plan(config):
  """(steps per epoch, the ProgressiveSchedule) of a resolved config."""
  train = config.train
  steps_per_epoch = config.data.num_train_examples / train.batch_size
  total_steps = max(int(train.epochs * steps_per_epoch), train.min_steps, 1)
  schedule = ProgressiveSchedule(
      total_steps, train.stages, (train.base_image_size, train.image_size),
      (train.randaug_min, train.randaug_max), (0.0, train.mixup_max), (0.0, train.cutmix_max),
      (config.model.dropout_min, config.model.dropout_rate), train.progressive_rule)
  return steps_per_epoch, schedule


class Trainer:
  """Trains and evaluates one resolved config (hparams.resolve) in `model_dir` (local or gs://) on `runtime`."""

  def __init__(self, config, model_dir, data_dir, runtime):
    self.config = config
    self.model_dir = str(model_dir)
    self.checkpoint_dir = os.path.join(self.model_dir, CHECKPOINT_DIR)
    self.strategy = runtime.strategy
    self.is_chief = self._is_chief()
    self.train_source, self.eval_source = data_sources(config, data_dir)
    self._check_model_dir()
    if config.runtime.deterministic:
      tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(config.train.seed)
    policy = runtime.mixed_precision_policy(config.runtime.mixed_precision)
    keras.mixed_precision.set_global_policy(policy)
    self.compute_dtype = compute_dtype(policy)
    self.jit_compile = runtime.jit_compile(config.runtime.jit_compile)

    self.global_batch = config.train.batch_size
    steps_per_epoch, self.schedule = run_plan(config)
    self.total_steps = self.schedule.total_steps
    self.spec = get_model_spec(config.model.name)
    self.counts = RecordCounts()

    self.state = TrainState(config, self.strategy, self.jit_compile, self.total_steps, steps_per_epoch)
    self.model, self.optimizer, self.ema = self.state.model, self.state.optimizer, self.state.ema
    self.learning_rate = self.state.learning_rate
    self.rows = history.read(self.model_dir)
    self.evals = history.read(self.model_dir, EVAL_FILE)
    self._eval_step = self._make_eval_step()

  # ---- set-up helpers -------------------------------------------------------------------------------

  def _is_chief(self):
    resolver = getattr(self.strategy, "cluster_resolver", None)
    return resolver is None or resolver.task_type in (None, "chief") or (
        resolver.task_type == "worker" and resolver.task_id == 0)

  def _check_model_dir(self):
    """Refuses a model_dir whose checkpoints belong to another model; writes the resolved config."""
    path = os.path.join(self.model_dir, CONFIG_FILE)
    if tf.io.gfile.exists(path) and tf.train.latest_checkpoint(self.checkpoint_dir):
      with tf.io.gfile.GFile(path) as f:
        saved = _model_identity(yaml.safe_load(f.read()))
      wanted = _model_identity(self.config.to_dict())
      if saved != wanted:
        raise CheckpointMismatchError(
            f"{self.model_dir} holds checkpoints of {saved}, not {wanted}: use another --model_dir "
            "(or the same model settings to resume).")
    if self.is_chief:
      tf.io.gfile.makedirs(self.model_dir)
      with tf.io.gfile.GFile(path, "w") as f:
        f.write(yaml.safe_dump(self.config.to_dict(), sort_keys=False))

  @property
  def step(self):
    return self.state.step

  def _dataset(self, stage=None, skip_steps=0):
    """The distributed dataset of a training stage (its first `skip_steps` steps skipped), or of
    evaluation when stage is None."""
    config = self.config
    augment = None if config.data.augment == "none" else config.data.augment

    def dataset_fn(input_context):
      common = {"num_classes": config.model.num_classes, "normalization": self.spec.normalization,
                "input_context": input_context, "dtype": self.compute_dtype, "counts": self.counts}
      if stage is None:
        return build_dataset(self.eval_source, is_training=False, image_size=config.eval.image_size,
                             batch_size=config.eval.batch_size, pad_eval=True, **common)
      return build_dataset(self.train_source, is_training=True, image_size=stage.image_size,
                           batch_size=self.global_batch, augment=augment,
                           randaug_magnitude=stage.randaug_magnitude, randaug_layers=config.data.randaug_layers,
                           mixup_alpha=stage.mixup_alpha, cutmix_alpha=stage.cutmix_alpha,
                           seed=config.train.seed * 1000 + stage.index, shuffle_buffer=config.data.shuffle_buffer,
                           cache=config.data.cache, crop_area_min=config.data.crop_area_min,
                           skip_steps=skip_steps, **common)

    def shape_free_dataset_fn(input_context):
      # Without XLA one traced step serves every image size: forget the static sizes, so that a new
      # stage does not retrace (about 15 s for a small model on 2 CPU cores).
      return dataset_fn(input_context).map(
          lambda images, labels: (tf.compat.v1.placeholder_with_default(images, (None, None, None, 3)), labels))

    reuse_trace = stage is not None and not self.jit_compile
    return self.strategy.distribute_datasets_from_function(shape_free_dataset_fn if reuse_trace else dataset_fn)

  # ---- checkpoints ------------------------------------------------------------------------------------

  def _manager(self):
    runtime = self.config.runtime
    directory = self.checkpoint_dir
    if not self.is_chief:  # other workers write to a scratch folder (MultiWorkerMirrored needs every save)
      directory = os.path.join(self.model_dir, "workers", str(self.strategy.cluster_resolver.task_id))
    return tf.train.CheckpointManager(self.state.checkpoint, directory, max_to_keep=runtime.keep_checkpoints,
                                      keep_checkpoint_every_n_hours=runtime.keep_checkpoint_every_hours)

  def restore(self, path=None):
    """Restores model, optimizer, EMA and RNG states from `path` (default: the latest checkpoint);
    returns the restored step, or 0 when there is no checkpoint."""
    path = path or tf.train.latest_checkpoint(self.checkpoint_dir)
    if not path:
      return 0
    try:
      self.state.checkpoint.read(path).assert_existing_objects_matched().expect_partial()
    except (AssertionError, ValueError, tf.errors.InvalidArgumentError) as error:
      raise CheckpointMismatchError(f"Checkpoint {path} does not fit this model: {str(error)[:300]}") from None
    return self.step

  # ---- eval -------------------------------------------------------------------------------------------

  def _eval_counts(self, images, labels, weights):
    """(top-1 hits, top-5 hits, examples) of one replica's batch; padding has weight 0."""
    logits = tf.cast(self.model(images, training=False), tf.float32)
    targets = tf.argmax(labels, -1)
    top1 = tf.reduce_sum(weights * tf.cast(tf.math.in_top_k(targets, logits, 1), tf.float32))
    in_top5 = tf.math.in_top_k(targets, logits, min(5, logits.shape[-1]))
    top5 = tf.reduce_sum(weights * tf.cast(in_top5, tf.float32))
    return top1, top5, tf.reduce_sum(weights)

  def _make_eval_step(self):
    """One distributed eval step, compiled like the train step; returns the three sums over replicas."""
    counts = tf.function(self._eval_counts, jit_compile=self.jit_compile)

    @tf.function
    def eval_step(iterator):
      results = self.strategy.run(counts, args=next(iterator))
      return [self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None) for value in results]

    return eval_step

  def evaluate(self, use_ema=True):
    """Top-1 / top-5 on the eval split at the eval size, with the EMA weights by default. Every example
    counts exactly once: batches are full and padded (static shapes), the padding weighs nothing."""
    iterator = iter(self._dataset(stage=None))
    totals = [0.0, 0.0, 0.0]

    def run():
      while True:
        top1, top5, examples = (float(value) for value in self._eval_step(iterator))
        if examples == 0:  # only padding left on every replica
          break
        totals[0] += top1
        totals[1] += top5
        totals[2] += examples

    if use_ema:
      with self.ema.averaged_weights():
        run()
    else:
      run()
    count = max(totals[2], 1.0)
    return {"step": self.step, "top1": totals[0] / count, "top5": totals[1] / count, "examples": int(totals[2]),
            "ema": use_ema}

  # ---- the loop -----------------------------------------------------------------------------------------

  def stage_table(self):
    lines = [f"{'stage':>5} {'steps':>13} {'size':>5} {'dropout':>8} {'randaug':>8} {'mixup':>6} {'cutmix':>6}"]
    for s in self.schedule.stages:
      lines.append(f"{s.index:>5} {f'{s.start_step}-{s.end_step}':>13} {s.image_size:>5} {s.dropout_rate:>8.3f} "
                   f"{s.randaug_magnitude:>8.2f} {s.mixup_alpha:>6.3f} {s.cutmix_alpha:>6.3f}")
    return "\n".join(lines)

  def train(self, eval_between_stages=False):
    """Runs every stage from the restored step to the end; returns the eval results made on the way."""
    step = self.restore()
    if step == 0 and self.config.train.ft_init_ckpt:
      print(f"fine-tuning from {warm_start(self.model, self.config.train.ft_init_ckpt, self.config.train.ft_init_ema)}",
            flush=True)
      self.ema.reset()
    # Rows logged after the restored checkpoint are about to be trained again.
    self.rows = [row for row in self.rows if row["step"] <= step]
    self.evals = [result for result in self.evals if result["step"] <= step]
    writer = self._summary_writer()
    runtime = self.config.runtime
    manager = self._manager()
    with StopSignals() as stop:  # SIGTERM / SIGINT: save at the end of the current host loop, then stop
      for stage in self.schedule.stages:
        if self.step >= stage.end_step:
          continue
        # A resumed stage continues its data exactly where the checkpoint was taken.
        iterator = iter(self._dataset(stage, skip_steps=self.step - stage.start_step))
        train_loop = self.state.train_loop(stage.dropout_rate, stage.image_size)
        print(f"stage {stage.index + 1}/{len(self.schedule.stages)}: {stage.image_size} px, dropout "
              f"{stage.dropout_rate:.3f}, RandAugment {stage.randaug_magnitude:.2f}, mixup {stage.mixup_alpha:.3f}, "
              f"cutmix {stage.cutmix_alpha:.3f}, steps {self.step}-{stage.end_step}", flush=True)
        progress = keras.utils.Progbar(stage.end_step - stage.start_step,
                                       stateful_metrics=["loss", "top1", "img/s", "lr"])
        progress.update(self.step - stage.start_step)
        stage_started = time.perf_counter()
        loop_seconds = []  # (steps, seconds) per host loop: the first one also traces (and compiles) the step
        while self.step < stage.end_step:
          next_save = (self.step // runtime.checkpoint_steps + 1) * runtime.checkpoint_steps
          num_steps = min(runtime.steps_per_loop, stage.end_step - self.step, next_save - self.step)
          started = time.perf_counter()
          loss, top1 = train_loop(iterator, tf.constant(num_steps))
          loss, top1 = float(loss), float(top1)
          seconds = time.perf_counter() - started
          loop_seconds.append((num_steps, seconds))
          if not math.isfinite(loss):
            raise FloatingPointError(f"Loss became {loss} at step {self.step}: lower train.lr_base or enable "
                                     "train.gradient_clip; the last good checkpoint is kept.")
          row = {"step": self.step, "stage": stage.index, "image_size": stage.image_size, "loss": loss,
                 "train_top1": top1, "lr": float(self.learning_rate(self.step)),
                 "images_per_second": num_steps * self.global_batch / seconds,
                 "dropout": stage.dropout_rate, "randaug": stage.randaug_magnitude, "mixup": stage.mixup_alpha,
                 "cutmix": stage.cutmix_alpha, "records_skipped": self.counts.skipped}
          progress.update(self.step - stage.start_step, [("loss", loss), ("top1", top1),
                                                         ("img/s", row["images_per_second"]), ("lr", row["lr"])])
          if self.is_chief:
            self.rows.append(row)
            history.write(self.model_dir, self.rows)
            with writer.as_default(step=self.step):
              for key, value in row.items():
                if key != "step":
                  tf.summary.scalar(key, value)
          stopping = stop.received  # read once: a signal arriving after this is handled after the next loop
          if stopping or self.step % runtime.checkpoint_steps == 0 or self.step == stage.end_step:
            manager.save(checkpoint_number=self.step)
          if stopping:
            self._stop(stopping, writer)
        compile_seconds = _compile_seconds(loop_seconds)
        print(f"stage {stage.index + 1} done in {time.perf_counter() - stage_started:.1f} s, of which "
              f"{compile_seconds:.1f} s tracing{' and XLA compiling' if self.jit_compile else ''} the step "
              f"(records skipped so far: {self.counts.skipped})", flush=True)
        if self.is_chief:
          with writer.as_default(step=self.step):
            tf.summary.scalar("stage_compile_seconds", compile_seconds)
        if eval_between_stages:
          self._log_eval(self.evaluate(), writer)
        if stop.received:  # during the eval: the stage's end is saved already
          self._stop(stop.received, writer)
    return self.evals

  def _stop(self, signal_name, writer):
    if writer is not None:
      writer.flush()
    raise Preempted(signal_name, self.step)

  def _summary_writer(self):
    return tf.summary.create_file_writer(os.path.join(self.model_dir, "train")) if self.is_chief else None

  def _log_eval(self, result, writer):
    self.evals.append(result)
    print(f"eval at step {result['step']}: top-1 {result['top1']:.4f}, top-5 {result['top5']:.4f} "
          f"({result['examples']} images, {'EMA' if result['ema'] else 'raw'} weights)", flush=True)
    if self.is_chief:
      history.write(self.model_dir, self.evals, EVAL_FILE)
      with writer.as_default(step=result["step"]):
        tf.summary.scalar("eval/top1", result["top1"])
        tf.summary.scalar("eval/top5", result["top5"])

  def finish(self):
    """Final eval (unless the last stage's eval was at this step) and the PNG plot; returns the result."""
    if self.evals and self.evals[-1]["step"] == self.step:
      result = self.evals[-1]
    else:
      result = self.evaluate()
      self._log_eval(result, self._summary_writer())
    if self.is_chief:
      plot = history.plot(self.model_dir, self.schedule.stages, self.evals)
      print(f"plot: {plot}", flush=True)
    return result
