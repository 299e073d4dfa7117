"""train.time_budget: epochs from the step time measured on the run's own data and model."""

import dataclasses
import json
import re
import time
import types

import numpy as np
import pytest
import yaml

from effnetv2_tf import hparams
from effnetv2_tf.engines.tf.engine import TFEngine
from effnetv2_tf.model.efficientnet import blocks_of
from effnetv2_tf.run_dir import RunDir, RunDirBusyError
from effnetv2_tf.tpu.strategy import resolve_runtime
from effnetv2_tf.train.engine import Engine
from effnetv2_tf.train.pace import pace_at
from effnetv2_tf.train.schedule import Stage, run_plan
from effnetv2_tf.train.time_budget import BudgetRefit, epochs_for, fit_to_budget
from effnetv2_tf.train.trainer import Trainer
from tests.helpers import main_py, tiny


def test_the_epochs_fill_the_seconds_at_the_stages_paces():
  config = hparams.override(hparams.get_config("photos-b0"), "model.num_classes=5,data.num_train_examples=3200")
  config = hparams.resolve(config)  # 3 stages at 96, 144, 192 px; 100 steps an epoch
  pace = pace_at({96: 1.0, 192: 4.0})
  seconds = 600.0
  steps = seconds / np.mean([pace(96), pace(144), pace(192)])
  steps_per_epoch, schedule = run_plan(config)
  assert epochs_for(steps_per_epoch, schedule.stages, pace, seconds) == pytest.approx(steps / 100)


def test_a_budget_too_short_for_the_stages_is_fitted_with_the_one_stage_a_short_run_gets():
  """photos-*: under 30 epochs one stage at 5/6 of the final size (160 px), without dropout or stochastic
  depth, as the step is timed: 200 steps of 3 s fill 10 minutes. A budget whose epochs make the 3 stages
  (96, 144, 192 px) times their last and first sizes too, and their stages trace the step again."""
  recipe = hparams.override(hparams.get_config("photos-b0"), "model.num_classes=5,data.num_train_examples=3200")
  replanned, timed, traced, now = [], [], [], [0.0]

  def resolve(epochs):
    recipe.train.epochs = float(epochs)
    return hparams.resolve(recipe)

  def traced_as(config):  # what a traced step holds: the first stage's dropout, the stochastic depth
    return run_plan(config)[1].stages[0].dropout_rate, config.regularization.survival_prob

  def fit(minutes, start_up=0.0):
    recipe.train.time_budget = minutes
    timed.clear()
    trainer = types.SimpleNamespace(config=resolve(30.0), resumed_config=None,
                                    paces=types.SimpleNamespace(trace_seconds=30.0), plan_hooks=[])

    def time_steps(sizes):
      timed.extend(sizes)
      traced[:] = [traced_as(trainer.config)]
      return {size: {96: 1.0, 160: 3.0, 192: 4.0}[size] for size in sizes}

    trainer.time_steps = time_steps
    trainer.replan = lambda config: (replanned.append(config), setattr(trainer, "config", config))
    trainer.engine = types.SimpleNamespace(
        one_process=True, traces_again=lambda config, stage: (stage.dropout_rate, config.regularization.survival_prob) != traced[0])
    now[0] = start_up
    fitted, how = fit_to_budget(trainer, resolve, lambda: now[0])
    return fitted, how, trainer

  short, how, trainer = fit(10.0)
  (hook,) = trainer.plan_hooks  # what refits the run as it trains
  refit = hook.refit
  assert (short.progressive.stages, short.augment.policy) == (1, "none") and replanned[-1] is short
  assert (short.regularization.dropout_max, short.regularization.survival_prob) == (0.0, 1.0)
  assert [stage.randaug_magnitude for stage in run_plan(short)[1].stages] == [0.0]  # no RandAugment m logged
  assert traced[0] == (0.0, 1.0)  # timed as a short run traces its step
  assert short.train.epochs == pytest.approx(2.0) and (
      "200 steps fill the 10-minute budget (600 s left after start-up; a step takes 3.000 s at 160 px;") in how
  assert timed == [160]  # one stage at 160 px: the sizes of the stages it would have had are not timed
  # Once the stage has run, its own pace fits the run again: at step 20, 2.5 s a step, 540 s left (60 s spent).
  now[0] = 60.0
  assert refit(20, 2.97) == (None, None)  # 201 steps: the end 3 s later, under a hundredth of the budget
  refitted, line = refit(20, 2.5)
  assert run_plan(refitted)[1].total_steps == 20 + 216 and refitted.train.epochs == pytest.approx(236.5 / 100)
  assert (refitted.progressive.stages, refitted.progressive.image_size_max) == (1, 160)
  assert refitted.regularization.survival_prob == 1.0
  assert "236 steps fill the 10-minute budget (refitted at step 20, where the step takes 2.500 s at 160 px, " \
         "timed 3.000 s before the run)" in line
  # A pace far faster than timed: 10,800 steps would be 108 epochs, 3 stages; the run gets the most steps its
  # one stage holds instead, 2,999 (29.995 epochs: a short run is under 30).
  capped, line = refit(20, 0.05)
  assert run_plan(capped)[1].total_steps == 2999 and len(run_plan(capped)[1].stages) == 1
  assert line == ("train.epochs 29.995: 2999 steps (the most one stage holds) of the 10-minute budget (refitted at "
                  "step 20, where the step takes 0.050 s at 160 px, timed 3.000 s before the run)")
  trainer.config = capped
  assert refit(500, 0.05) == (None, None)  # already the most one stage holds
  long, how, trainer = fit(240.0)
  refit = trainer.plan_hooks[0].refit  # 48 epochs at 160 px's pace, about 60 at the stages' mean pace: 3 stages
  assert (long.progressive.stages, long.augment.policy) == (3, "randaug") and long.train.epochs > 30
  assert timed == [160, 192, 96] and "1.000 s at 96 px, 3.000 s at 160 px, 4.000 s at 192 px" in how
  assert "(14400 s left after start-up, 30 s of it to trace the step again;" in how  # with their regularization
  # 3 stages refit too, at the first stage's pace and the other sizes' timings scaled alike: at half the timed
  # pace the steps fill the budget left at step 20 (14,340 s), one more would not.
  now[0], traced[0] = 60.0, traced_as(long)  # the first stage traced its step
  refitted, line = refit(20, 0.5)
  total = run_plan(refitted)[1].total_steps
  assert refitted.progressive.stages == 3 and total > 2 * run_plan(long)[1].total_steps - 100

  def seconds(total):
    stages = run_plan(resolve((total + 0.5) / 100))[1].stages
    return sum((stage.end_step - max(stage.start_step, 20)) * pace_at({96: 0.5, 192: 2.0})(stage.image_size)
               for stage in stages)

  assert seconds(total) <= 14340 < seconds(total + 1)
  assert line == (f"train.epochs {refitted.train.epochs:.3g}: {total} steps fill the 240-minute budget (refitted "
                  "at step 20, where the step takes 0.500 s at 96 px, timed 1.000 s before the run; the other "
                  "sizes' timings scaled alike)")
  # Three times slower than timed, 14,340 s would hold about 20 epochs: one stage at 160 px, not the stage
  # running; the run keeps its 3 stages at their fewest steps (30.005 epochs: 30 or more).
  slower, line = refit(20, 3.0)
  assert run_plan(slower)[1].total_steps == 3000 and slower.progressive.stages == 3
  assert line.startswith("train.epochs 30.005: 3000 steps (the fewest 3 stages hold) of the 240-minute budget")
  with pytest.raises(ValueError, match="leaves 0 s after start-up, 0 steps at 3.00 s a step: give a longer budget"):
    fit(10.0, start_up=700.0)  # a start-up longer than the budget


def test_the_refit_hook_is_due_after_a_tenth_of_a_stage_then_after_each_further_three_tenths_of_it():
  calls = []

  def refit(step, pace):
    calls.append(step)
    return ("refitted", "line") if step == 40 else (None, None)

  hook = BudgetRefit(refit)
  longer = Stage(index=0, start_step=0, end_step=200, image_size=96, dropout_rate=0.0, randaug_magnitude=0.0,
                 mixup_alpha=0.0, cutmix_alpha=0.0)
  stage = dataclasses.replace(longer, end_step=100)
  hook.stage_started(stage)
  assert [hook.after_loop(step, stage, 0.5) for step in (5, 9, 10, 12)] == [None] * 4  # 10: no change worth it
  assert calls == [10]  # due after 10 steps, then 30 steps after that try
  assert hook.after_loop(40, stage, 0.5) == ("refitted", "line") and calls == [10, 40]
  assert hook.after_loop(70, longer, 0.5) is None and calls == [10, 40]  # refitted to 200 steps: due at 100
  assert hook.after_loop(100, longer, 0.5) is None and calls == [10, 40, 100]
  hook.stage_started(longer)  # a stage of its own: due at 20, then at 80
  for step in (12, 20, 79, 80, 200):
    hook.after_loop(step, longer, 0.5)
  assert calls == [10, 40, 100, 20, 80]  # never at the stage's end


def test_timing_the_step_puts_the_run_back_as_it_was(demo_records, tmp_path, capsys):
  config = hparams.resolve(hparams.override(hparams.get_config("photos-b0"), tiny(  # 30 epochs: 3 stages,
      model__num_classes=5, data__num_train_examples=96, progressive__image_size_min=32, train__epochs=30.0)))
  assert (config.regularization.dropout_max, config.regularization.survival_prob) == (0.2, 0.8)  # regularized
  trainer = Trainer(config, str(tmp_path / "run"), str(demo_records), resolve_runtime("default"), TFEngine)
  assert isinstance(trainer.engine, Engine)  # TensorFlow's engine has every member the stage loop asks for
  with RunDir(tmp_path / "run").exclusive(), pytest.raises(RunDirBusyError):  # another run holds the folder
    trainer.time_steps([40, 32], seconds=0.5)
  state = trainer.engine.state
  before = [v.numpy() for v in state.model.variables + state.optimizer.variables + state.ema.shadows]
  paces = trainer.time_steps([40, 32], seconds=0.5)
  assert sorted(paces) == [32, 40] and all(pace > 0 for pace in paces.values())
  after = [v.numpy() for v in state.model.variables + state.optimizer.variables + state.ema.shadows]
  assert trainer.step == 0 and all(np.array_equal(a, b) for a, b in zip(before, after))
  assert trainer.paces.trace_seconds > max(paces.values())  # the first step traced the step
  assert not (tmp_path / "run").exists()  # the folder the timing created, holding only its lock, is gone

  fitted = hparams.resolve(hparams.override(hparams.get_config("photos-b0"), tiny(
      model__num_classes=5, data__num_train_examples=96, progressive__image_size_min=32, train__epochs=4.0)))
  traced = state.train_loop(0.2, 40)
  assert state.train_loop(0.2, 32) is traced  # one traced step for every size (no XLA here)
  trainer.replan(fitted)  # the run's length follows
  assert trainer.schedule.total_steps == int(state.total_steps.numpy()) == 48
  assert (fitted.regularization.dropout_max, fitted.regularization.survival_prob) == (0.0, 1.0)  # 4 epochs: short
  assert trainer.schedule.stages[0].dropout_rate == 0.0
  assert state.traces_again(fitted, trainer.schedule.stages[0])
  assert state.train_loop(0.2, 40) is not traced  # traced again, without stochastic depth
  assert not state.traces_again(fitted, dataclasses.replace(trainer.schedule.stages[0], dropout_rate=0.2))
  drop_paths = [block.drop_path for block in blocks_of(state.model) if block.drop_path]
  assert drop_paths and {layer.survival_prob for layer in drop_paths} == {1.0}
  assert int(state.warmup_steps.numpy()) == int(fitted.train.warmup_epochs * 12)
  assert state.ema_decay.numpy() == pytest.approx(fitted.train.ema_decay)
  assert float(state.learning_rate(24)) == pytest.approx(0.5 * fitted.train.lr_base * 8 / 256)  # cosine midway
  fitted.augment.policy = "none"  # as photos-* sets for a short run
  trainer.replan(fitted)
  trainer.log.stage_started(trainer.schedule.stages[0], 1, 0)
  assert ", no augmentation," in capsys.readouterr().out


@pytest.mark.e2e  # 2 minutes of main.py in its own process: its budget counts from start-up
@pytest.mark.one_stack
def test_a_run_fits_its_budget_and_its_rerun_keeps_the_epochs(demo_records, tmp_path):
  budget = 1.5  # minutes: start-up alone took 35 s on 2026-12-03, when this CPU ran at half speed
  hparam_str = ",".join([tiny(eval__batch_size=50, progressive__image_size_max=80, eval__image_size=80),
                         f"train.time_budget={budget}"])
  args = ("--hparams=photos-b0", f"--model_dir={tmp_path}", f"--data_dir={demo_records}", f"--hparam_str={hparam_str}")
  started = time.monotonic()
  done = main_py(*args)
  seconds = time.monotonic() - started
  assert done.returncode == 0, done.stderr[-3000:]
  # Timed at 64 px (a short run's 5/6 of 80), and at 32 and 80 unless the budget fits a short run.
  fitted = re.search(r"^train\.epochs ([\d.]+): (\d+) steps fill the 1\.5-minute budget \((\d+) s left after "
                     r"start-up(?:, \d+ s of it to trace the step again)?; a step takes (?:[\d.]+ s at 32 px, )?"
                     r"[\d.]+ s at 64 px(?:, [\d.]+ s at 80 px)?; the final eval comes on top\)$",
                     done.stdout, re.MULTILINE)
  assert fitted, done.stdout
  # The run fits its steps again at the pace its first stage's first tenth measured, and after each further
  # 30% of it, where the end moves by a hundredth of the budget or more; config.yaml follows.
  stages = int(re.search(r"^stage 1/(\d): ", done.stdout, re.MULTILINE).group(1))
  refits = list(re.finditer(r"^train\.epochs ([\d.]+): (\d+) steps(?: \(the (?:most|fewest) [^)]+\) of| fill) "
                            r"the 1\.5-minute budget \(refitted at step (\d+), where the step takes [\d.]+ s at "
                            fr"{64 if stages == 1 else 32} px, timed [\d.]+ s before the run"
                            fr"{'' if stages == 1 else '; the other sizes. timings scaled alike'}\)$",
                            done.stdout, re.MULTILINE))
  at_steps = [int(refit.group(3)) for refit in refits]
  assert at_steps == sorted(set(at_steps)) and min(at_steps, default=1e9) >= int(fitted.group(2)) / stages / 10, (
      done.stdout)
  assert ("\nprogressive.image_size_max 64 instead of 80: a run of " in done.stdout) == (stages == 1)  # says why
  fitted = refits[-1] if refits else fitted
  steps = int(fitted.group(2))
  rows = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
  assert rows[0]["step"] == 1 and rows[-1]["step"] == steps > 20  # from step 0: the timing steps were undone
  train = yaml.safe_load((tmp_path / "config.yaml").read_text())["train"]
  assert train["time_budget"] == budget and f"{train['epochs']:.3g}" == f"{float(fitted.group(1)):.3g}"
  # The budget holds start-up and training; the final eval (100 small images) comes on top. Wide bounds: the
  # speed of a shared 2-core machine drifts by up to 40% within minutes.
  assert 0.5 * budget * 60 < seconds < 1.5 * budget * 60 + 20, seconds

  again = main_py(*args)  # finished: the rerun takes the epochs the run fitted
  assert again.returncode == 0, again.stderr[-3000:]
  assert f"train.epochs {float(fitted.group(1)):.3g}: as the run fitted them to the 1.5-minute budget" in (
      again.stdout)
  assert "timing the step" not in again.stdout

