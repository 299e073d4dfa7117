"""The training job: progressive stages in a run directory, on an engine that holds the numbers.

The loop is the paper's Algorithm 1: for each stage, build its data (image size, augmentation and mixing
strength), run the engine's compiled step (dropout rate set), log, save. It knows no framework: the engine
(engine.Engine; effnetv2_tf.engines has TensorFlow's and Keras 3 on JAX's) holds model, optimizer, EMA,
checkpoints and the step, and after each host loop small hooks do one job each (DivergenceGuard,
CheckpointAndStop, plan hooks such as the time budget's refit). Beside it: RunLog (console, TensorBoard, JSONL,
plot), run_data (sources, class names) and RunDir (the folder's file names).
"""

import contextlib
import dataclasses
import os
import sys
import time

import yaml

from effnetv2_tf.checkpoints import first_line, first_readable, none_readable
from effnetv2_tf.data.pipeline import Preprocessing, RecordCounts, explained_data_errors, train_dataset
from effnetv2_tf.data.seeds import STAGE, derive_seed
from effnetv2_tf.model import get_model_spec
from effnetv2_tf.run_dir import CONFIG_FILE, DAMAGED_DIR, RunDir, model_identity
from effnetv2_tf.train.checkpointing import CheckpointAndStop
from effnetv2_tf.train.divergence import DivergenceGuard, LossWatch
from effnetv2_tf.train.engine import CheckpointMismatchError
from effnetv2_tf.train.pace import LoopClock, RunPaces, time_loop
from effnetv2_tf.train.plan import planned_stages
from effnetv2_tf.train.preemption import StopSignals
from effnetv2_tf.train.run_data import check_run_classes, class_names, eval_source, train_source
from effnetv2_tf.train.run_log import RunLog, augmentation
from effnetv2_tf.train.schedule import run_plan


def check_same_model(run_dir, saved, config):
  """Refuses a run dir whose checkpoints belong to a model other than `config`'s (`saved`: the config.yaml
  of its checkpoints' run, or None)."""
  if saved is not None and model_identity(saved) != model_identity(config):
    raise CheckpointMismatchError(
        f"{run_dir} holds checkpoints of {model_identity(saved)}, not {model_identity(config)}: use another "
        "--model_dir (or the same model settings to resume).")


# The config groups that shape a run's model, data order and schedule (eval and runtime do not), and the
# settings in them a resumed run may still change freely (the initial weights' among them: a resumed run has its own).
SCHEDULE_GROUPS = ("model", "data", "progressive", "augment", "mixing", "regularization", "train")
RESUMABLE_CHANGES = ("train.ft_init_ckpt", "train.ft_init_ema", "model.zero_init_residual", "data.cache")
# The settings that scale the learning rate: a resumed run that changes them starts its momenta again.
LEARNING_RATE_SCALE = ("train.lr_base", "train.batch_size")


def changed_settings(saved, config):
  """{"group.key": (saved value, new value)} of the SCHEDULE_GROUPS settings that differ between a run's
  config.yaml (`saved`) and `config`."""
  now = yaml.safe_load(yaml.safe_dump(config.to_dict()))  # the same types as the saved file
  changed = {}
  for group in SCHEDULE_GROUPS:
    for key, value in now[group].items():
      name = f"{group}.{key}"
      if name not in RESUMABLE_CHANGES and key in saved.get(group, {}) and saved[group][key] != value:
        changed[name] = (saved[group][key], value)
  return changed


def _listed(changed):
  return ", ".join(f"{key} {old!r} -> {new!r}" for key, (old, new) in sorted(changed.items()))


def host_loop_steps(step, stage_end, checkpoint_steps, steps_per_loop, progress_seconds, pace):
  """Steps of the next host loop from `step`: steps_per_loop, cut at the stage's end and the next checkpoint,
  and to what fits in progress_seconds at `pace` (seconds per step; one step while it is None); 0 seconds:
  no cut by time."""
  next_save = (step // checkpoint_steps + 1) * checkpoint_steps
  steps = min(steps_per_loop, stage_end - step, next_save - step)
  if progress_seconds > 0:
    steps = min(steps, 1 if pace is None else max(1, int(progress_seconds / pace)))
  return steps


def stage_preprocessing(config, stage, normalization, dtype):
  """The Preprocessing of one stage of a resolved config: the stage's size and strengths, the config's
  augmentation policy."""
  augment = config.augment
  return Preprocessing(
      stage.image_size, normalization, dtype, augment=None if augment.policy == "none" else augment.policy,
      randaug_magnitude=stage.randaug_magnitude, randaug_layers=augment.randaug_layers,
      crop_area_min=augment.crop_area_min, mixup_alpha=stage.mixup_alpha, cutmix_alpha=stage.cutmix_alpha)


class Trainer:
  """Trains one resolved config (hparams.resolve) in `model_dir` (local or gs://) on `runtime`.

  Building it reads the data's file list and the run dir but writes nothing; train() writes the config.
  A run with checkpoints resumes only with the settings it was started with, unless `allow_new_settings`.
  `engine(config, runtime, eval_source, counts)` builds the engine.Engine that trains it on `runtime` (an
  EngineSpec's engine_class() and runtime(launch)).
  """

  def __init__(self, config, model_dir, data_dir, runtime, engine, allow_new_settings=False):
    self.config = config
    self.run_dir = RunDir(model_dir)
    self.data_dir = data_dir
    self.train_source = train_source(config, data_dir)
    self.class_names = class_names(config, data_dir)
    # The config.yaml of the run this one resumes (None for a new run), read once.
    latest = self.run_dir.latest_checkpoint()
    self.resumed_config = self.run_dir.read_config() if latest else None
    if latest and self.resumed_config is None and not allow_new_settings:
      raise ValueError(f"{self.run_dir} holds checkpoints ({os.path.basename(latest)}) but no {CONFIG_FILE}, the "
                       "settings they were trained with: restore it from a copy of the run, or pass "
                       f"--continue_with_new_settings to go on from {os.path.basename(latest)} with this command's.")
    check_same_model(self.run_dir, self.resumed_config, config)
    _, self.schedule = run_plan(config)
    self.spec = get_model_spec(config.model.name)
    self.counts = RecordCounts()
    self.engine = engine(config, runtime, eval_source(config, data_dir), self.counts)
    self.is_chief = self.engine.is_chief
    self.log = RunLog(self.run_dir, self.is_chief, augment_policy=config.augment.policy,
                      num_classes=config.model.num_classes)
    self.paces = RunPaces()  # timed by time_steps, then measured by the stages: the time left's and a budget's
    # Hooks that may give the run a new plan as its stages measure their pace (train.time_budget's refit):
    # stage_started(stage), and after_loop(step, stage, pace) -> None or (config, the line saying how).
    self.plan_hooks = []
    self.allow_new_settings = allow_new_settings
    self._holding_run_dir = False

  @contextlib.contextmanager
  def holding_run_dir(self):
    """Holds the run dir for this process (the chief's OS lock) while it trains or times steps in it, so that
    a second run on the folder is refused before it spends anything; nested holds are one."""
    if self._holding_run_dir or not self.is_chief:
      yield
      return
    with self.run_dir.exclusive():
      self._holding_run_dir = True
      try:
        yield
      finally:
        self._holding_run_dir = False

  @property
  def step(self):
    return self.engine.step

  def replan(self, config):
    """Trains `config` instead, a config that differs in the run's length and what follows from it only
    (epochs, warm-up, EMA decay, photos-*' stages and augmentation: a run fitted to a time budget); the
    traced step is kept."""
    steps_per_epoch, self.schedule = run_plan(config)
    self.engine.resize(config, self.schedule.total_steps, steps_per_epoch)
    self.config = config
    self.log.augment_policy = config.augment.policy

  def time_steps(self, image_sizes, seconds=3.0):
    """{size: seconds per step} of the first stage's step at each of `image_sizes`, on the run's own data, by
    the clock of the run's plan (pace.time_loop: one untimed step per size, the trace and the pipeline's start,
    one to size a host loop of about `seconds`, then that loop timed). Model, optimizer and EMA are put back as
    they were; the traced step stays, and the paces serve the run's time-left estimate until its stages have
    measured their own."""
    paces = {}
    with self.holding_run_dir(), self.engine.trial_steps():
      for size in image_sizes:
        stage = dataclasses.replace(self.schedule.stages[0], image_size=size)
        data = self._stage_data(stage)
        train_loop = self.engine.train_loop(stage)
        clock, _ = time_loop(lambda steps: self._run_loop(train_loop, data, steps), seconds)
        paces[size] = clock.pace
        self.paces.timed_at({size: clock.pace}, clock.compile_seconds)
    return paces

  def evaluate(self, use_ema=True):
    return self.engine.evaluate(use_ema)

  def stage_table(self):
    lines = [f"{'stage':>5} {'steps':>13} {'size':>5} {'dropout':>8} {'augment':>16} {'mixup':>6} {'cutmix':>6}"]
    for s in self.schedule.stages:
      augment = augmentation(self.config.augment.policy, s.randaug_magnitude)
      lines.append(f"{s.index:>5} {f'{s.start_step}-{s.end_step}':>13} {s.image_size:>5} {s.dropout_rate:>8.3f} "
                   f"{augment:>16} {s.mixup_alpha:>6.3f} {s.cutmix_alpha:>6.3f}")
    return "\n".join(lines)

  def _stage_data(self, stage):
    """The batches of a stage, continuing exactly where a restored checkpoint was taken."""
    config = self.config
    preprocessing = stage_preprocessing(config, stage, self.spec.normalization, self.engine.compute_dtype)
    skip_steps = self.step - stage.start_step
    return self.engine.batches(lambda input_context: train_dataset(
        self.train_source, preprocessing, batch_size=config.train.batch_size,
        num_classes=config.model.num_classes, input_context=input_context, counts=self.counts,
        seed=derive_seed(config.train.seed, STAGE, stage.index), shuffle_buffer=config.data.shuffle_buffer,
        cache=config.data.cache, skip_steps=skip_steps))

  def _start(self):
    """Resumes from the latest checkpoint, or warm-starts a new run; records the config the run trains."""
    if self.is_chief:
      for name in self.run_dir.remove_unfinished_saves():
        print(f"removed {name}, the remains of a checkpoint save that did not finish", flush=True)
      names, folder = self.run_dir.set_aside_incomplete()
      for name in names:
        print(f"{name} is not a complete checkpoint (its metadata or commit marker is missing): moved to {folder}, "
              "so that the run can save at its step again", flush=True)
      if repaired := self.run_dir.repair_checkpoint_state():
        print(repaired, flush=True)
    latest = self.run_dir.latest_checkpoint()
    changed = changed_settings(self.resumed_config, self.config) if latest and self.resumed_config else {}
    if latest and not self.allow_new_settings:
      self._refuse_changes(latest, changed)
      if unchecked := check_run_classes(self.run_dir, self.config, self.data_dir,
                                        how_to_allow=", or pass --continue_with_new_settings to go on with the data's"):
        if self.is_chief:
          print(unchecked, flush=True)
    step = self._restore_readable(latest)
    rescaled = {key: change for key, change in changed.items() if key in LEARNING_RATE_SCALE}
    if rescaled:
      self.engine.reset_momenta()
      print(f"the learning rate's scale changed ({_listed(rescaled)}): the optimizer's momenta, steps of the old "
            "rate, start again from 0", flush=True)
    if step == 0 and self.config.train.ft_init_ckpt:
      train = self.config.train
      print(f"fine-tuning from {self.engine.warm_start(train.ft_init_ckpt, train.ft_init_ema)}", flush=True)
    self.log.resume_at(step)
    if self.is_chief:
      self.run_dir.write_config(self.config.to_dict())
      if self.class_names:  # so that exports carry them
        self.run_dir.write_labels(self.class_names)

  def _restore_readable(self, latest):
    """Restores `latest` or, where it cannot be read back (a damaged file), the newest older checkpoint that can;
    the chief then moves those that could not into damaged/ (never deletes them), a line each. When none can be
    read, the newest's error stands."""
    if not latest:
      return self.engine.restore(None)
    path, step, unreadable = first_readable(self.run_dir.newest_first(latest), self.engine.restore)
    if path is None:
      raise none_readable(unreadable, CheckpointMismatchError, f": restore {self.run_dir.checkpoints} from a copy, or "
                          "move it away to start over")
    if unreadable and self.is_chief:
      folder = self.run_dir.set_aside([failed for failed, _ in unreadable], into=DAMAGED_DIR)
      for failed, error in unreadable:
        print(f"{os.path.basename(failed)} cannot be read back ({first_line(error)}): moved to {folder}; resuming "
              f"from {os.path.basename(path)}", flush=True)
    return step

  def _refuse_changes(self, checkpoint, changed):
    if changed:
      raise ValueError(f"{self.run_dir} holds {os.path.basename(checkpoint)} of a run with other settings "
                       f"({_listed(changed)}): rerun with the run's settings to resume it, use another --model_dir, "
                       "or pass --continue_with_new_settings to go on from this checkpoint with the new ones.")

  def _warn_about_warmup(self):
    warmup, total = self.engine.warmup_steps, self.schedule.total_steps
    if warmup > total / 3:
      print(f"warning: the learning-rate warm-up takes {warmup} of the run's {total} steps "
            f"(train.warmup_epochs {self.config.train.warmup_epochs:g} of {self.config.train.epochs:g} epochs): "
            "lower train.warmup_epochs for a run this short", file=sys.stderr, flush=True)

  def _missed_stage_eval(self, eval_between_stages):
    """A stage's end was saved but its eval never ran (the run stopped in between)."""
    inner_ends = {stage.end_step for stage in self.schedule.stages[:-1]}
    return eval_between_stages and self.step in inner_ends and all(
        result["step"] != self.step for result in self.log.evals)

  def train(self, eval_between_stages=False):
    """Runs every stage from the restored step to the end; returns the eval results made on the way. The
    chief holds the run dir while it trains."""
    with self.holding_run_dir():
      self._start()
      self._warn_about_warmup()
      if self._missed_stage_eval(eval_between_stages):
        self.log.evaluation(self.evaluate())
      try:
        return self._train_stages(eval_between_stages)
      finally:
        self.engine.finish_saves()  # a save going on in the background is written before the run dir is let go

  def _train_stages(self, eval_between_stages):
    runtime = self.config.runtime
    guard = DivergenceGuard(LossWatch(self.config.model.num_classes, (row["loss"] for row in self.log.rows)),
                            self.run_dir, self.config.train.lr_base, self.is_chief, self.engine.largest_values,
                            before_stop=self._before_divergence_stop, learning_rate=self.engine.learning_rate,
                            total_steps=self.schedule.total_steps)
    # SIGTERM / SIGINT: save at the end of the current host loop, then stop; within runtime.stop_seconds
    with StopSignals(runtime.stop_seconds, self.run_dir.latest_checkpoint) as signals:
      checkpoints = CheckpointAndStop(self.engine.saver(self.run_dir), runtime.checkpoint_steps,
                                      signals, saved=guard.saved, before_stop=self.log.flush,
                                      finish_saves=self.engine.finish_saves,
                                      agreed_signal=self.engine.agreed_signal)
      for index in range(len(self.schedule.stages)):
        stage = self.schedule.stages[index]  # as refitted so far: a refit moves the later stages
        if self.step >= stage.end_step:
          continue
        whole = self.step == stage.start_step  # a stage trained whole here compares with the run's plan
        data = self._stage_data(stage)
        train_loop = self.engine.train_loop(stage)
        self.log.stage_started(stage, len(self.schedule.stages), self.step, self._seconds_left())
        stage_started = time.perf_counter()
        clock = LoopClock()  # the stage's pace, once a loop after the first has run
        for hook in self.plan_hooks:
          hook.stage_started(stage)
        while self.step < stage.end_step:
          num_steps = self._loop_steps(stage, clock.pace)
          loss, top1 = clock.time(lambda steps: self._run_loop(train_loop, data, steps), num_steps)
          verdict = guard.after_loop(self.step, loss)
          pace = clock.pace
          if pace:
            self.paces.measured_at(stage.image_size, pace, clock.compile_seconds)
            for hook in self.plan_hooks:
              if replanned := hook.after_loop(self.step, stage, pace):
                stage = self._replan_running(stage, *replanned)
          self.log.host_loop(self._row(stage, loss, top1, num_steps, clock.seconds), stage,
                             self.config.train.batch_size / pace if pace else None, self._seconds_left(),
                             pace * (stage.end_step - self.step) if pace else None)
          checkpoints.after_loop(self.step, stage.end_step, verdict)
        self.log.stage_finished(stage, self.step, time.perf_counter() - stage_started,
                                clock.compile_seconds, self.engine.jit_compile, self.counts.skipped,
                                planned_stages(self.run_dir.plan_file, self.schedule).get(stage.index) if whole
                                else None)
        if eval_between_stages:
          self.log.evaluation(self.evaluate())
        checkpoints.after_eval(self.step)
    return self.log.evals

  def _replan_running(self, stage, config, line):
    """The running stage as `config` plans it (a plan hook's); config.yaml follows, so that a rerun resumes the
    replanned run exactly."""
    self.replan(config)
    if self.is_chief:
      self.run_dir.write_config(config.to_dict())
    stage = self.schedule.stages[stage.index]
    self.log.stage_refitted(stage, line)
    return stage

  def _loop_steps(self, stage, pace):
    # Workers of a multi-worker run would time themselves apart, and their host loops must agree.
    runtime = self.config.runtime
    return host_loop_steps(self.step, stage.end_step, runtime.checkpoint_steps, runtime.steps_per_loop,
                           runtime.progress_seconds if self.engine.one_process else 0.0, pace)

  def _seconds_left(self):
    """The run's training time left, with a compile for each stage to come whose step is compiled again (under
    XLA, one per image size: a minute each on a CPU)."""
    compiles = sum(self.engine.traces_again(self.config, stage) for stage in self.schedule.stages
                   if stage.end_step > self.step)
    return self.paces.seconds_left(self.schedule.stages, self.step, compiles)

  def _run_loop(self, train_loop, data, num_steps):
    """(mean loss, top-1) of one host loop; an error the data raised is one clear line."""
    with explained_data_errors(self.train_source):
      return train_loop(data, num_steps)

  def _row(self, stage, loss, top1, num_steps, seconds):
    return {"step": self.step, "stage": stage.index, "image_size": stage.image_size, "loss": loss,
            "train_top1": top1, "lr": self.engine.learning_rate(self.step),
            "images_per_second": num_steps * self.config.train.batch_size / seconds,
            "dropout": stage.dropout_rate, "randaug": stage.randaug_magnitude, "mixup": stage.mixup_alpha,
            "cutmix": stage.cutmix_alpha, "records_skipped": self.counts.skipped}

  def _before_divergence_stop(self):
    """The progress line ended, the logs flushed, and the saves written: the guard sets the unproven aside."""
    print(flush=True)
    self.log.flush()
    self.engine.finish_saves()

  def finish(self):
    """Final eval (unless the last stage's eval was at this step) and the PNG plot; returns the result."""
    evals = self.log.evals
    if evals and evals[-1]["step"] == self.step:
      result = evals[-1]
    else:
      result = self.evaluate()
      self.log.evaluation(result)
    plot = self.log.plot(self.schedule.stages)
    if plot:
      print(f"plot: {plot}", flush=True)
    return result
