"""train.time_budget: a run's epochs from its step time, measured when it starts.

The budget counts from the start of the process: start-up, the measurement and the training stages fit in it;
the final eval comes on top. A step's cost is about a + b * pixels: the step is timed on the run's own data
at the last and, unless the run is short enough for one stage, the first stage's image sizes, and the epochs
are those whose stages (equal steps each) fill what is left of the budget. A rerun of the run takes the
epochs it was started with from its config.yaml.
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
    how = f"train.epochs {epochs:.3g}: fitted to the {minutes:g}-minute budget when the run started"
  else:
    steps_per_epoch, schedule = run_plan(config)
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
      retrace = trainer.trace_seconds if _traced_as(fitted, fitted_stages) != _traced_as(config, stages) else 0.0
      if not retrace and [stage.image_size for stage in fitted_stages] == [stage.image_size for stage in stages]:
        return epochs, stages, 0.0
      return epochs_for(steps_per_epoch, fitted_stages, pace_at(paces), left - retrace), fitted_stages, retrace

    print(f"timing the step for the {minutes:g}-minute budget", flush=True)
    # The last size first (under XLA the compiled step kept is the last one timed: the first stage's). Timed
    # at that size alone, smaller stages look cheaper than they are (a step has a fixed part) and the epochs
    # come out too many; when even those make a one-stage run, its size is the only pace it needs.
    paces = trainer.time_steps([stages[-1].image_size])
    left = minutes * 60 - seconds_since_start()
    epochs, fitted, retrace = fit(paces, left)
    if {stage.image_size for stage in fitted} - set(paces):
      paces.update(trainer.time_steps([stages[0].image_size]))
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
  config = resolve(epochs)
  trainer.replan(config)
  return config, how


def _traced_as(config, stages):
  """What the traced step holds of a run: its first stage's dropout rate and its stochastic depth."""
  return stages[0].dropout_rate, config.regularization.survival_prob
