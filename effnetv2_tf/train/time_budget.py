"""train.time_budget: a run's epochs from its step time, measured when it starts.

The budget counts from the start of the process: start-up, the measurement and the training stages fit in it;
the final eval comes on top. A step's cost is about a + b * pixels: the step is timed on the run's own data
as a short run trains it (photos-*: one stage at 5/6 of the final size, without dropout or stochastic depth)
and, where the budget makes a longer plan, at its last and first stages' sizes, and the epochs are those
whose stages (equal steps each) fill what is left of the budget. A few steps read the step's time only to
within about 15-40% (the pipeline still warms up) and the machine's speed drifts, so the run fits its steps
again once a tenth of its first stage has run and after each further 30% of it, at the pace the stage
measured and the other sizes' timings scaled alike, as far as the stage running stays as it is (a short
run's one stage under 30 epochs, 3 stages at 30 or more). A rerun of the run takes the epochs it was started
(or refitted) with from its config.yaml.
"""

import dataclasses
import statistics

from effnetv2_tf.train.pace import pace_at, scaled, seconds_from
from effnetv2_tf.train.schedule import run_plan

# The run is refitted once this fraction of a stage has run (its pace has steadied by then), and again after
# each REFIT_EVERY of it (the machine's speed drifts): only the first stage's length can change, a later
# stage's start would move.
REFIT_FIRST, REFIT_EVERY = 0.1, 0.3


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
  if not trainer.engine.one_process:
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
      retrace = trainer.paces.trace_seconds if trainer.engine.traces_again(fitted, fitted_stages[0]) else 0.0
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
    trainer.plan_hooks.append(BudgetRefit(_refitter(trainer, resolve, minutes, seconds_since_start, paces)))
  config = resolve(epochs)
  trainer.replan(config)
  return config, how


class BudgetRefit:
  """The trainer's plan hook of a budgeted run: refits it at the pace its stage measures, once REFIT_FIRST of
  the stage has run and after each further REFIT_EVERY of it.

  Args:
    refit: (step, pace) -> (config, line), or (None, None) where no change is worth it (_refitter's).
  """

  def __init__(self, refit):
    self.refit = refit
    self._tried_at = None  # the step of the stage's last refit

  def stage_started(self, stage):
    self._tried_at = None

  def after_loop(self, step, stage, pace):
    """(the refitted config, the line saying how) when a refit is due at `step` and changes the run; else None."""
    length = stage.end_step - stage.start_step  # the stage as refitted so far
    due = stage.start_step + REFIT_FIRST * length if self._tried_at is None else self._tried_at + REFIT_EVERY * length
    if not due <= step < stage.end_step:
      return None
    self._tried_at = step
    config, line = self.refit(step, pace)
    return None if config is None else (config, line)


def _refitter(trainer, resolve, minutes, seconds_since_start, timed):
  """`refit(step, pace) -> (config, line)`: the run's epochs once the stage running has measured its own
  `pace` (seconds per step) at `step`, the other sizes' timings (`timed`, {size: seconds per step} before the
  run) scaled alike: the most steps whose stages fill what is left of the budget. The stage running must train
  on as it does (a one-stage short run stays under 30 epochs, 3 stages stay 3; a later stage keeps its start):
  where the fit would change it, the steps go only as far toward the fit as keeps it; (None, None) where that
  moves the run's end by less than a hundredth of the budget."""

  def plan(total, steps_per_epoch):
    fitted = resolve((total + 0.5) / steps_per_epoch)  # int(epochs * steps_per_epoch) == total
    return fitted, run_plan(fitted)[1].stages

  def refit(step, pace):
    config = trainer.config
    steps_per_epoch, schedule = run_plan(config)
    running = next(stage for stage in schedule.stages if stage.start_step <= step < stage.end_step)
    pace_of = pace_at(scaled(timed, running.image_size, pace))
    left = minutes * 60 - seconds_since_start()

    def seconds(total):  # the steps from `step` on
      return seconds_from(step, plan(total, steps_per_epoch)[1], pace_of)

    def keeps(total):  # the stage running trains on as it does, with the step as traced
      fitted, stages = plan(total, steps_per_epoch)
      same = stages[running.index] if running.index < len(stages) else None
      return (same is not None and same.end_step > step and fitted.augment.policy == config.augment.policy
              and dataclasses.replace(same, end_step=running.end_step) == running
              and not trainer.engine.traces_again(fitted, same))

    high = step + 1  # the steps filling `left`: doubled past it, then bisected
    while seconds(high) <= left:
      high = 2 * high
    low = step + 1
    while low < high - 1:
      middle = (low + high) // 2
      low, high = (middle, high) if seconds(middle) <= left else (low, middle)
    total = low
    bound = ""
    if not keeps(total):  # the nearest total to it that keeps the stage running, from the planned one
      kept, changed = schedule.total_steps, total
      while abs(changed - kept) > 1:
        middle = (kept + changed) // 2
        kept, changed = (middle, changed) if keeps(middle) else (kept, middle)
      total, count = kept, len(schedule.stages)
      held = "one stage holds" if count == 1 else f"{count} stages hold"
      bound = f" ({'the most' if total < changed else 'the fewest'} {held})"
    if abs(total - schedule.total_steps) * pace < minutes * 60 / 100:  # no change worth a line
      return None, None
    fitted, stages = plan(total, steps_per_epoch)
    # At a bound, three decimals: 29.995 epochs, not 30, where the plan changes at 30.
    digits = len(str(int(fitted.train.epochs))) + 3 if bound else 3
    before = f", timed {timed[running.image_size]:.3f} s before the run" if running.image_size in timed else ""
    others = "; the other sizes' timings scaled alike" if len(stages) > 1 else ""
    return fitted, (f"train.epochs {fitted.train.epochs:.{digits}g}: {total} steps{bound} "
                    f"{'of' if bound else 'fill'} the {minutes:g}-minute budget (refitted at step {step}, where "
                    f"the step takes {pace:.3f} s at {running.image_size} px{before}{others})")

  return refit
