"""A step's cost: measured over host loops (LoopClock), and at any image size from the seconds per step measured
at one or more sizes.

On the CPU a step costs about a + b * pixels: a fixed part (per-op overhead, the optimizer and EMA updates)
and a part that grows with the image area. The time budget plans with it, and the run's time left is
estimated with it.
"""

import time


class LoopClock:
  """Times the host loops of one traced step (a stage's, or a timing's): the first loop also traces (and
  compiles) it, so the pace is the later loops' and the compile time what the first took beyond that pace."""

  def __init__(self, now=time.perf_counter):
    self.now = now
    self.loops = []  # (steps, seconds)

  def time(self, run_loop, num_steps):
    """`run_loop(num_steps)`'s result, its seconds recorded."""
    started = self.now()
    result = run_loop(num_steps)
    self.loops.append((num_steps, self.now() - started))
    return result

  @property
  def pace(self):
    """Seconds per step over the loops after the first; None before there is one."""
    later = self.loops[1:]
    return sum(seconds for _, seconds in later) / sum(steps for steps, _ in later) if later else None

  @property
  def compile_seconds(self):
    """What the first loop took beyond its steps at the pace (all of it while it is the only one): the trace
    and the compile, or about 0 when the step was traced before."""
    first_steps, first = self.loops[0]
    pace = self.pace
    return first if pace is None else max(first - first_steps * pace, 0.0)

  @property
  def seconds(self):
    """The last loop's seconds."""
    return self.loops[-1][1]


def time_loop(run_loop, seconds, now=time.perf_counter):
  """(LoopClock, the last loop's result) of a compiled step's `run_loop(num_steps)`: one step (the trace and
  compile), one that sizes a loop of about `seconds`, then that loop (at least 2 steps); a step that takes
  `seconds` (when given) or more is timed once (a large model on the CPU: minutes a stage otherwise)."""
  clock = LoopClock(now)
  for _ in range(2):
    result = clock.time(run_loop, 1)
  if not 0 < seconds <= clock.pace:
    result = clock.time(run_loop, max(2, round(seconds / clock.pace)))
  return clock, result


def pace_at(paces):
  """Seconds per step at any image size, from {size: seconds per step} at one or more sizes: a + b * size**2
  through the smallest and the largest (in proportion to the pixels through one)."""
  measured = sorted(paces.items())
  (small, small_pace), (large, large_pace) = measured[0], measured[-1]
  if small == large:
    return lambda size: large_pace * (size / large) ** 2
  per_pixel = max(large_pace - small_pace, 0.0) / (large ** 2 - small ** 2)
  fixed = large_pace - per_pixel * large ** 2
  return lambda size: fixed + per_pixel * size ** 2


def seconds_from(step, stages, pace):
  """The seconds the steps of `stages` from `step` on take, each stage's steps at `pace(image_size)` a step."""
  return sum(max(stage.end_step - max(stage.start_step, step), 0) * pace(stage.image_size) for stage in stages)


def scaled(timed, size, pace):
  """`timed` ({size: seconds per step}) scaled by what `pace`, measured at `size`, makes of their reading
  there: a timing of a few steps reads every size off by about the same factor (the pipeline still warming
  up, the machine's speed drifting)."""
  factor = pace / pace_at(timed)(size)
  return {timed_size: timed_pace * factor for timed_size, timed_pace in timed.items()}


class RunPaces:
  """What a run knows of its step's cost: the paces timed before it trains (Trainer.time_steps; a time budget
  plans with them), with what the timing's first step took beyond its pace (the trace, the pipeline's start),
  the paces its stages measured, and what compiling the step took; from them, the run's time left."""

  def __init__(self):
    self.timed = {}  # {image size: seconds per step}, timed before the run
    self.trace_seconds = 0.0
    self.measured = {}  # {image size: seconds per step}, the stages' own
    self._latest = None  # (size, pace) of the stage measured last

  def timed_at(self, paces, trace_seconds):
    """Adds a timing's paces ({size: seconds per step}) and its trace's seconds."""
    self.timed.update(paces)
    self.trace_seconds = max(self.trace_seconds, trace_seconds)

  def measured_at(self, size, pace, compile_seconds=0.0):
    """Notes the pace the stage at `size` measured so far, and what its first loop took to compile the step."""
    self.measured[size] = pace
    self._latest = size, pace
    self.trace_seconds = max(self.trace_seconds, compile_seconds)

  def paces(self):
    """{size: seconds per step}: the stages' own, and the sizes only timed scaled by what the latest
    measurement makes of the timing."""
    if self._latest is None or not self.timed:
      return {**self.timed, **self.measured}
    return {**scaled(self.timed, *self._latest), **self.measured}

  def seconds_left(self, stages, step, compiles=0):
    """The training time left from `step` (evals not counted), each stage's steps at its size's pace, and
    `compiles` more compiles of the step (the stages to come that compile it again) at the longest one seen;
    None before any pace is known."""
    paces = self.paces()
    return seconds_from(step, stages, pace_at(paces)) + compiles * self.trace_seconds if paces else None
