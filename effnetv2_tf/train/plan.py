"""The plan of a run (main.py --plan): every stage's compiled step measured on the hardware at hand, and the run's
time (and cost) projected from it, before the run itself is paid for.

Each stage's step is compiled and timed on synthetic batches of the stage's shape (no data needed) through the
engine that would train it and the clock that times the run's own loops (pace.time_loop). Where data is given, its
input pipeline's speed at each stage is measured apart, on this host. A stage takes its steps at the slower of the
two; on the CPU, where the same cores run both, at their sum. The CPU times at most CPU_BATCH images a step, fewer
where the host's memory would not hold the final stage's step at that batch, and scales the step time with the
batch. The evals are extrapolated from the stages' step times. The largest batch a replica can take at the final
stage's size comes from the memory analysis of its step compiled at two batches, against the device's memory (where
the engine has the one and the device reports the other; on the CPU half the host's, shared by its devices). What was
measured and what was extrapolated is written beside the figures (Plan.measured, Plan.extrapolated).
"""

import dataclasses
import functools
import json
import time

from effnetv2_tf.train.pace import pace_at, time_loop

CPU_BATCH = 64  # the largest global batch the CPU times; a larger one is timed at a divisor of it and scaled
LOOP_SECONDS = 3.0  # each stage's timed loop (after a step that compiles and one that sizes the loop)
DATA_SECONDS = 3.0  # each stage's input pipeline, after its first batches
# An eval step is a forward pass: about a third of a training step's work (forward, backward ~2x) per image.
EVAL_SHARE = 1 / 3
# The largest batch: a device's memory the step may take (the rest: the allocator's fragmentation, the input's
# buffers, the runtime's own), and the batches per replica whose compiled steps' memory draws the line.
MEMORY_SHARE = 0.9
MEMORY_PROBES = (8, 16)


@dataclasses.dataclass(frozen=True)
class StageTiming:
  """One stage's compiled step, measured: its global `batch` (the one timed), what the first step took beyond
  the pace (the trace and compile), seconds per step, and the device's peak memory afterwards (bytes; None where
  the runtime reports none), the loss of the last loop (NaN: the step is broken)."""
  image_size: int
  batch: int
  compile_seconds: float
  step_seconds: float
  peak_memory: int | None
  loss: float


def timed_batch(batch, platform, cpu_batch=CPU_BATCH, replicas=1):
  """The global batch the step is timed at: the run's, or on the CPU its largest divisor up to `cpu_batch` that
  splits over the `replicas` (a TPU-sized batch would take minutes a step there); the run's if none does."""
  if platform != "cpu" or batch <= cpu_batch:
    return batch
  return max((divisor for divisor in range(replicas, cpu_batch + 1, replicas) if batch % divisor == 0),
             default=batch)


def synthetic_batches(engine, image_size, batch, num_classes):
  """An endless stream of one synthetic global batch (normal images of the engine's dtype, one-hot labels),
  split over the replicas as the run's data is."""
  import tensorflow as tf
  rng = tf.random.Generator.from_seed(0)
  images = tf.cast(rng.normal((batch, image_size, image_size, 3)), engine.compute_dtype)
  labels = tf.one_hot(rng.uniform((batch,), 0, num_classes, tf.int32), num_classes)

  def replica_batches(input_context):  # each replica's share of the global batch, as the run's data gives it
    share = input_context.get_per_replica_batch_size(batch) if input_context else batch
    return tf.data.Dataset.from_tensors((images[:share], labels[:share])).repeat()

  return engine.batches(replica_batches)


def time_stage(engine, config, stage, runtime, seconds=LOOP_SECONDS):
  """The StageTiming of `stage`'s compiled step on synthetic batches (the engine's batch, config's classes)."""
  batch = config.train.batch_size
  loop = engine.train_loop(stage)
  batches = synthetic_batches(engine, stage.image_size, batch, config.model.num_classes)
  clock, (loss, _) = time_loop(lambda steps: loop(batches, steps), seconds)
  return StageTiming(stage.image_size, batch, clock.compile_seconds, clock.pace, peak_memory(runtime), float(loss))


def peak_memory(runtime):
  """The device's peak memory in bytes so far, as its allocator reports it; on the CPU the process's peak resident
  memory (its devices' memory is the host's); None where neither is known."""
  peak = runtime.peak_memory()
  if peak is None and runtime.platform == "cpu":
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux
  return peak


def timing_engine(engine_class, config, runtime, cpu_batch=CPU_BATCH, replicas=1):
  """(engine, its config): the engine that times the stages, built for the batch timed_batch gives (a step's cost
  scales with its batch; the rest of the config is the run's)."""
  from effnetv2_tf import hparams
  batch = timed_batch(config.train.batch_size, runtime.platform, cpu_batch, replicas)
  timed = hparams.with_values(config, {"train.batch_size": batch, "eval.batch_size": batch})
  try:
    return engine_class(timed, runtime), timed
  except ValueError:  # e.g. a divisor that does not split over the devices: the run's own batch does
    return engine_class(config, runtime), config


def time_stages(engine, config, stages, runtime, seconds=LOOP_SECONDS):
  """[StageTiming] of `stages` on `engine` (timing_engine's), whose steps are undone afterwards."""
  with engine.trial_steps():
    return [time_stage(engine, config, stage, runtime, seconds) for stage in stages]


@dataclasses.dataclass(frozen=True)
class LargestBatch:
  """The largest batch a replica can take at the final stage's `image_size` (a multiple of 8 from 8 up), the peak
  learning rate the run's rule gives at it, and the memory line it came from (bytes a device needs: fixed_bytes +
  image_bytes a replica's image, against device_bytes); or, with per_replica None, `why_not` (not searched)."""
  image_size: int
  per_replica: int | None = None
  learning_rate: float | None = None
  fixed_bytes: float | None = None
  image_bytes: float | None = None
  device_bytes: int | None = None
  why_not: str | None = None


def fitting_batch(memory_at, device_bytes, share=MEMORY_SHARE, probes=MEMORY_PROBES):
  """(batch per replica, fixed bytes, bytes an image): `memory_at(batch per replica) -> bytes` a device needs,
  measured at the two `probes` and taken as linear in the batch; the largest batch that needs at most `share` of
  `device_bytes`, rounded down to a multiple of 8 from 8 up (0: not one image fits)."""
  small, large = probes
  low, high = memory_at(small), memory_at(large)
  image = max((high - low) / (large - small), 1.0)
  fixed = low - image * small
  count = max(int((share * device_bytes - fixed) // image), 0)
  return (count - count % 8 if count >= 8 else count), fixed, image


def largest_batch(engine, config, stage, runtime):
  """The LargestBatch of `stage` (the final one) on `engine` (timing_engine's) and `runtime`'s device (a JAX
  runtime's memory_size: only an engine with a memory analysis asks for it)."""
  from effnetv2_tf.train.recipe import peak_learning_rate
  memory_at = functools.cache(lambda count: engine.step_memory(stage, count * engine.replicas))  # a compile each
  if memory_at(MEMORY_PROBES[0]) is None:
    return LargestBatch(stage.image_size, why_not="not searched: this engine has no memory analysis of its "
                        "compiled step (--engine=jax has, for the same model and recipe)")
  device_bytes = runtime.memory_size()
  if device_bytes is None:
    return LargestBatch(stage.image_size, why_not="not searched: this device does not report its memory size")
  per_replica, fixed, image = fitting_batch(memory_at, device_bytes)
  return LargestBatch(stage.image_size, per_replica, peak_learning_rate(config.train, per_replica * engine.replicas),
                      fixed, image, device_bytes)


def planning_engine(engine_class, config, runtime, final_stage):
  """(engine, its config, LargestBatch): timing_engine's engine and the largest batch at `final_stage`; on the CPU,
  where that batch is below the one timing_engine times, an engine timing the largest divisor of the run's batch
  that fits, and a line saying so (a step the host's memory cannot hold gets the process killed, with no line)."""
  timer, timed = timing_engine(engine_class, config, runtime)
  largest = largest_batch(timer, config, final_stage, runtime)
  if runtime.platform != "cpu" or largest.per_replica is None:
    return timer, timed, largest
  host = f"the {largest.device_bytes * timer.replicas / 2**30:.1f} GiB of this host's memory its steps may take"
  if largest.per_replica == 0:
    raise ValueError(f"--plan: not one image a device of the final stage's step at {final_stage.image_size} px fits "
                     f"{host} (XLA's memory analysis): plan on the machine that will train, or a smaller model.")
  fits, before = largest.per_replica * timer.replicas, timed.train.batch_size
  if fits < before:
    timer, timed = timing_engine(engine_class, config, runtime, cpu_batch=fits, replicas=timer.replicas)
    print(f"timing {timed.train.batch_size} images a step, not {before}: {host} holds {fits} at "
          f"{final_stage.image_size} px (XLA's memory analysis of the final stage's step)", flush=True)
  return timer, timed, largest


def data_speed(dataset, batch, seconds=DATA_SECONDS, warm_batches=2):
  """Images a second this host's input pipeline (`dataset` of batches of `batch` images) gives, after its
  first `warm_batches` (the pipeline's start and shuffle buffer)."""
  batches = iter(dataset)
  for _ in range(warm_batches):
    next(batches)
  count, started = 0, time.perf_counter()
  while count < 3 or time.perf_counter() - started < seconds:
    next(batches)
    count += 1
  return count * batch / (time.perf_counter() - started)


@dataclasses.dataclass(frozen=True)
class StagePlan:
  """One stage as planned: its steps and epochs, its compiled step measured (scaled from the batch timed) and its
  images a second, its input pipeline's speed (None without data), which of the two bounds it and the seconds a
  step that gives, its time with its compile."""
  index: int
  start_step: int
  end_step: int
  epochs: float
  image_size: int
  batch: int
  batch_per_replica: float
  timed_batch: int
  compile_seconds: float
  step_seconds: float
  images_per_second: float
  data_images_per_second: float | None
  bound: str  # "step", "data", or "step + data" (the CPU runs both)
  pace: float  # seconds a step, the bound's
  peak_memory: int | None
  seconds: float


@dataclasses.dataclass(frozen=True)
class Plan:
  """A run's plan: its stages, its evals and their total, the cost at a price per hour, and what was measured
  and what extrapolated (lines)."""
  model: str
  engine: str
  platform: str
  replicas: int
  batch: int
  from_step: int
  stages: list
  evals: int
  eval_examples: int | None
  eval_seconds: float | None
  total_seconds: float
  price_per_hour: float | None
  measured: list
  extrapolated: list
  largest: LargestBatch | None = None

  @property
  def cost(self):
    return None if self.price_per_hour is None else self.total_seconds / 3600 * self.price_per_hour

  def to_json(self):
    return json.dumps({**dataclasses.asdict(self), "cost": self.cost, "date": time.strftime("%Y-%m-%d %H:%M")},
                      indent=1) + "\n"


def make_plan(config, schedule, steps_per_epoch, timings, data_speeds, *, engine, platform, replicas, evals,
              eval_examples, from_step=0, price_per_hour=None, largest=None):
  """The Plan of a resolved `config` from its stages' timings (StageTiming, one per stage of `schedule`) and
  its input pipeline's speed per stage (images a second, or None each: not measured); `largest`: the final
  stage's LargestBatch.

  evals: how many evals the run makes (between stages and the final one); eval_examples: the eval split's size,
  or None where unknown (the evals are then left out of the total, and said to be).
  """
  batch = config.train.batch_size
  stages = []
  for stage, timing, speed in zip(schedule.stages, timings, data_speeds):
    step = timing.step_seconds * batch / timing.batch  # the cost of a step grows with its batch
    pace, bound = step, "step"
    if speed is not None:
      reading = batch / speed
      if platform == "cpu":  # the same cores decode and train: their times add
        pace, bound = step + reading, "step + data"
      elif reading > step:
        pace, bound = reading, "data"
    steps = max(stage.end_step - max(stage.start_step, from_step), 0)
    stages.append(StagePlan(
        stage.index, stage.start_step, stage.end_step, (stage.end_step - stage.start_step) / steps_per_epoch,
        stage.image_size, batch, batch / replicas, timing.batch, timing.compile_seconds, step, batch / step, speed,
        bound, pace, timing.peak_memory, steps * pace + (timing.compile_seconds if steps else 0.0)))
  # An eval image costs a share of a training image at the eval size (a + b * size**2 through the stages' sizes).
  per_image = pace_at({t.image_size: t.step_seconds / t.batch for t in timings})
  eval_seconds = (evals * eval_examples * per_image(config.eval.image_size) * EVAL_SHARE
                  if eval_examples is not None else None)
  memory = "the process's peak resident memory" if platform == "cpu" else "the first device's peak memory"
  measured = [f"each stage's compiled step: its compile, then a loop of about {LOOP_SECONDS:g} s on synthetic "
              f"batches of {timings[0].batch} images; memory: {memory} after the stage's steps"]
  measured_data = any(speed is not None for speed in data_speeds)
  pace = ("the step's and the input pipeline's times added (the same CPU cores run both)" if measured_data and
          platform == "cpu" else "the slower of the step and the input pipeline" if measured_data else "the step's")
  extrapolated = [f"each stage's time: its steps at {pace} pace, with its compile"]
  if timings[0].batch != batch:
    extrapolated.append(f"the step time at batch {batch}, scaled from batch {timings[0].batch} (in proportion)")
  if largest is not None and largest.per_replica is not None:
    device = "a device's part of half the host's available memory" if platform == "cpu" else "the device's memory"
    measured.append(f"the largest batch: XLA's memory analysis of the final stage's step compiled at "
                    f"{MEMORY_PROBES[0]} and {MEMORY_PROBES[1]} images a replica (nothing run), a line through "
                    f"both, {MEMORY_SHARE:.0%} of {device}")
  if measured_data:
    measured.append(f"the input pipeline on this host: about {DATA_SECONDS:g} s a stage after its first batches")
  else:
    extrapolated.append("no input pipeline measured (no --data_dir): the data is taken to keep up")
  if eval_seconds is not None:
    extrapolated.append(f"{evals} eval(s) of {eval_examples:,} images at {config.eval.image_size} px, an image at "
                        f"{EVAL_SHARE:.2g} of a training image's step time (a forward pass)")
  else:
    extrapolated.append(f"{evals} eval(s) not counted: the eval split's size is unknown without its data")
  total = sum(stage.seconds for stage in stages) + (eval_seconds or 0.0)
  return Plan(config.model.name, engine, platform, replicas, batch, from_step, stages, evals, eval_examples,
              eval_seconds, total, price_per_hour, measured, extrapolated, largest)


def planned_stages(path, schedule):
  """{stage index: planned seconds} of the plan.json at `path` for the stages of `schedule` it planned whole (the
  same steps and size, from their start); {} without a plan (or a damaged one)."""
  import tensorflow as tf
  try:
    with tf.io.gfile.GFile(path) as f:
      saved = json.load(f)
    planned = {(s["start_step"], s["end_step"], s["image_size"]): s["seconds"] for s in saved["stages"]
               if s["start_step"] >= saved["from_step"]}
  except (tf.errors.OpError, ValueError, KeyError, TypeError):
    return {}
  return {stage.index: planned[key] for stage in schedule.stages
          if (key := (stage.start_step, stage.end_step, stage.image_size)) in planned}


def duration(seconds):
  """'2 h 05 min', '3 min 20 s', '12.3 s'."""
  if seconds >= 3600:
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"
  if seconds >= 60:
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
  return f"{seconds:.1f} s"


def _memory(peak):
  return "-" if peak is None else f"{peak / 2**30:.2f} GiB"


def _largest_line(largest, run_per_replica):
  if largest.per_replica is None:
    return f"largest batch at {largest.image_size} px: {largest.why_not}"
  memory = (f"{largest.fixed_bytes / 2**30:.2f} GiB + {largest.image_bytes / 2**20:.1f} MiB an image of "
            f"{largest.device_bytes / 2**30:.1f} GiB")
  if largest.per_replica == 0:
    return f"largest batch at {largest.image_size} px: not one image a replica fits ({memory})"
  fits = "" if run_per_replica <= largest.per_replica else ", which does not fit"
  return (f"largest batch at {largest.image_size} px: {largest.per_replica} a replica ({memory}; the run's "
          f"{run_per_replica:g}{fits}), where the learning-rate rule (train.lr_base per 256 images) peaks at "
          f"{largest.learning_rate:.3g}")


def table(plan):
  """The plan as the console shows it: a row per stage, then the evals, the total and the cost, then what was
  measured and what extrapolated."""
  lines = [f"{'stage':>5} {'steps':>13} {'epochs':>7} {'size':>5} {'batch/replica':>13} {'compile':>9} "
           f"{'step':>9} {'img/s':>9} {'data img/s':>10} {'memory':>10} {'time':>12}"]
  for s in plan.stages:
    data = "-" if s.data_images_per_second is None else f"{s.data_images_per_second:,.1f}"
    lines.append(f"{s.index + 1:>5} {f'{s.start_step}-{s.end_step}':>13} {s.epochs:>7.3g} {s.image_size:>5} "
                 f"{s.batch_per_replica:>13g} {s.compile_seconds:>8.1f}s {s.step_seconds:>8.3f}s "
                 f"{s.images_per_second:>9,.1f} {data:>10} {_memory(s.peak_memory):>10} {duration(s.seconds):>12}")
  if plan.eval_seconds is not None:
    lines.append(f"evals: {plan.evals} of {plan.eval_examples:,} images, {duration(plan.eval_seconds)}")
  resumed = f" (from step {plan.from_step}, where the run folder's checkpoint is)" if plan.from_step else ""
  cost = f"; at {plan.price_per_hour:g} an hour, {plan.cost:,.2f}" if plan.cost is not None else ""
  lines.append(f"total: {duration(plan.total_seconds)}{resumed} on {plan.platform.upper()}, {plan.replicas} "
               f"replica(s){cost}")
  if plan.largest is not None:
    lines.append(_largest_line(plan.largest, plan.batch / plan.replicas))
  if any(s.bound == "data" for s in plan.stages):
    lines.append("the input pipeline is slower than the step in the stages marked by their data img/s: more CPU "
                 "cores for input, or data.cache, would speed the run")
  lines += [f"measured: {line}" for line in plan.measured]
  lines += [f"extrapolated: {line}" for line in plan.extrapolated]
  return "\n".join(lines)
