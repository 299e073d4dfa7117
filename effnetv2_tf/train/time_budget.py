"""train.time_budget: a run's epochs from its step time, measured when it starts.

The budget counts from the start of the process: start-up, the measurement and the training stages fit in it;
the final eval comes on top. A step's cost is about a + b * pixels: the step is timed on the run's own data
as a short run trains it (photos-*: one stage at 5/6 of the final size, without dropout or stochastic depth)
and, where the budget makes a longer plan, at its last and first stages' sizes, and the epochs are those
whose stages (equal steps each) fill what is left of the budget. A few steps time the step only to within
about 15%, so a run of one stage fits its steps again once a tenth of them has run, at the pace they
measured (at most as many as one stage holds: more would make a longer plan). A rerun of the run takes
the epochs it was started (or refitted) with from its config.yaml.
"""

import statistics

import tensorflow as tf

from effnetv2_tf.train.pace import pace_at
from effnetv2_tf.train.trainer import run_plan


def epochs_for(steps_per_epoch, stages, pace, seconds):
  """The epochs whose `stages` (equal steps each) take `seconds` at `pace(image_size)` per step."""
  seconds_per_step = statistics.fmean(pace(stage.image_size) for stage in stages)
  return seconds / seconds_per_step / steps_per_epoch


def fit_to_budget(trainer, resolve, seconds_since_start):
  """Fits the run to config.train.time_budget minutes; returns the resolved config and a line saying how.

  `resolve(epochs)` gives the resolved config for a number of epochs (the values derived from the run's
  length follow); `seconds_since_start()` what the process has spent so far.
  """
  config = trainer.config
  minutes = config.train.time_budget
  if isinstance(trainer.strategy, tf.distribute.MultiWorkerMirroredStrategy):
    raise ValueError("train.time_budget cannot be used on several workers (each would time itself apart and "
                     "their schedules would differ): set train.epochs instead.")
  saved = trainer.resumed_config
  if saved and saved.get("train", {}).get("time_budget") == minutes:
    epochs = saved["train"]["epochs"]
    how = f"train.epochs {epochs:.3g}: as the run fitted them to the {minutes:g}-minute budget"
  else:
    print(f"timing the step for the {minutes:g}-minute budget", flush=True)
    # Timed as a short run trains (photos-*: one stage at 5/6 of the final size, without dropout or stochastic
    # depth), the plan a budget of minutes gets: a longer plan, whose trace costs it less, traces its step again.
    trainer.replan(resolve(1.0))
    steps_per_epoch, schedule = run_plan(trainer.config)
    stages = schedule.stages

    def fit(paces, left):
      """The epochs filling `left` seconds, their stages and the seconds a second trace of the step takes of
      them: the stages follow the run's length (photos-*: a short run has one, without dropout or stochastic
      depth), so the epochs are refitted when the plan or the traced regularization changes."""
      epochs = epochs_for(steps_per_epoch, stages, pace_at(paces), left)
      if epochs * steps_per_epoch < 1:  # start-up took the budget: refused below
        return epochs, stages, 0.0
      fitted = resolve(epochs)
      fitted_stages = run_plan(fitted)[1].stages
      retrace = trainer.trace_seconds if trainer.state.traces_again(fitted, fitted_stages[0]) else 0.0
      if not retrace and [stage.image_size for stage in fitted_stages] == [stage.image_size for stage in stages]:
        return epochs, stages, 0.0
      return epochs_for(steps_per_epoch, fitted_stages, pace_at(paces), left - retrace), fitted_stages, retrace

    # The one stage's size first; when the budget makes a longer plan, its last and first stage's sizes (under
    # XLA the compiled step kept is the last one timed: the first stage's). A step has a fixed part, so the
    # stages' paces are drawn through the sizes timed, not scaled from one.
    paces = trainer.time_steps([stages[-1].image_size])
    left = minutes * 60 - seconds_since_start()
    epochs, fitted, retrace = fit(paces, left)
    untimed = [size for size in dict.fromkeys((fitted[-1].image_size, fitted[0].image_size)) if size not in paces]
    if untimed:
      paces.update(trainer.time_steps(untimed))
      left = minutes * 60 - seconds_since_start()
      epochs, fitted, retrace = fit(paces, left)
    steps = max(int(epochs * steps_per_epoch), 0)
    if steps < max(1, len(fitted)):
      raise ValueError(f"train.time_budget {minutes:g} minutes leaves {max(left, 0):.0f} s after start-up, "
                       f"{steps} steps at {max(paces.values()):.2f} s a step: give a longer budget, or set "
                       "train.epochs instead.")
    timed = ", ".join(f"{pace:.3f} s at {size} px" for size, pace in sorted(paces.items()))
    retraced = f", {retrace:.0f} s of it to trace the step again" if retrace else ""
    how = (f"train.epochs {epochs:.3g}: {steps} steps fill the {minutes:g}-minute budget ({left:.0f} s left "
           f"after start-up{retraced}; a step takes {timed}; the final eval comes on top)")
    trainer.refit = _refitter(trainer, resolve, minutes, seconds_since_start, paces)  # not on a rerun
  config = resolve(epochs)
  trainer.replan(config)
  return config, how


def _refitter(trainer, resolve, minutes, seconds_since_start, timed):
  """`refit(step, pace) -> (config, line)`: the run's epochs once its first stage has measured its own
  `pace` (seconds per step) at `step`, filling the budget from there, or as much of it as one stage can
  (a longer run would get more stages: a faster pace than timed fits only as many steps as stay in one);
  (None, None) where the plan has more than one stage or the fitted plan would change what the traced
  step holds. `timed`: the paces timed before the run, {size: seconds per step}."""

  def plan(total, steps_per_epoch):
    fitted = resolve((total + 0.5) / steps_per_epoch)  # int(epochs * steps_per_epoch) == total
    return fitted, run_plan(fitted)[1].stages

  def refit(step, pace):
    config = trainer.config
    steps_per_epoch, schedule = run_plan(config)
    if len(schedule.stages) > 1:
      return None, None
    total = step + max(int((minutes * 60 - seconds_since_start()) / pace), 1)
    fitted, stages = plan(total, steps_per_epoch)
    fill, digits = "fill the", 3
    if len(stages) > 1:  # the most steps one stage holds, between the planned ones and `total`
      low, high = schedule.total_steps, total - 1
      while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if len(plan(middle, steps_per_epoch)[1]) == 1 else (low, middle - 1)
      if low == schedule.total_steps:
        return None, None
      fitted, stages = plan(low, steps_per_epoch)
      fill, digits = "(the most one stage holds) of the", 4  # 9.996, not 10: the plan changes at 10
    if trainer.state.traces_again(fitted, stages[0]):
      return None, None
    size = stages[0].image_size
    before = f", timed {timed[size]:.3f} s before the run" if size in timed else ""
    return fitted, (f"train.epochs {fitted.train.epochs:.{digits}g}: {stages[0].end_step} steps {fill} "
                    f"{minutes:g}-minute budget (refitted at step {step}, where the step takes {pace:.3f} s at "
                    f"{size} px{before})")

  return refit
