import math

import pytest
import tensorflow as tf

from effnetv2_tf.run_dir import RunDir
from effnetv2_tf.train.divergence import VALUE_BOUND, DivergenceGuard, LossWatch, value_problem


def test_a_loss_is_healthy_near_the_run_s_lowest_a_jump_a_warning_and_grown_by_orders_of_magnitude_a_divergence():
  watch = LossWatch(num_classes=5, losses=[1.6, 1.4, 1.2, 1.1])
  assert watch.check(1.0) == ("healthy", "")
  assert watch.check(3.1) == ("healthy", "")  # under 2x a uniform guess's, ln(5) = 1.61
  assert watch.check(3.5) == ("ok", "")  # over 3x the lowest and 2x the uniform guess's
  verdict, reason = watch.check(16.0)
  assert verdict == "jump" and "11x its recent median" in reason
  verdict, reason = watch.check(1765.0)
  assert verdict == "diverged" and "grew to 1765 (the run's lowest was 1)" in reason
  assert watch.check(float("nan"))[0] == watch.check(float("inf"))[0] == "diverged"
  assert 1765.0 not in watch.losses and math.inf not in watch.losses  # a divergence is not history


def test_a_run_that_memorised_its_data_may_bounce_back_to_ordinary_losses():
  watch = LossWatch(num_classes=5, losses=[0.001] * 10)
  assert watch.check(2.0)[0] == "jump"  # 2000x its lowest, yet below 10x ln(5) = 16.1
  assert watch.check(17.0)[0] == "diverged"


def test_values_are_healthy_only_while_finite_and_within_the_bound():
  assert value_problem({"a/kernel": 3.0, "the EMA of a/kernel": -0.0}) is None
  assert value_problem({"a/kernel": 3.0, "b/moving_variance": VALUE_BOUND * 2.1}) == "b/moving_variance reached 2.1e+06"
  assert value_problem({"a/kernel": 1.0, "b": float("nan")}) == "b became nan"
  assert value_problem({"a/kernel": float("inf"), "b": 1.0}) == "a/kernel became inf"


class _Run:
  """A run folder with real checkpoints of one variable, saved at the steps a test asks for."""

  def __init__(self, path, steps=()):
    self.run_dir = RunDir(path)
    self.saver = tf.train.CheckpointManager(tf.train.Checkpoint(v=tf.Variable(1.0)), self.run_dir.checkpoints,
                                            max_to_keep=None, checkpoint_name="ckpt")
    for step in steps:
      self.saver.save(checkpoint_number=step)

  def guard(self, values=None, losses=(2.0,)):
    largest = values if values is not None else {"a/kernel": 1.0}
    return DivergenceGuard(LossWatch(5, losses), self.run_dir, lr_base=0.5, is_chief=True,
                           largest_values=lambda: largest)

  def left(self):
    return [prefix.rsplit("/", 1)[1] for prefix in self.run_dir.complete_checkpoints()]


def test_a_divergence_sets_aside_every_checkpoint_saved_since_the_loss_was_last_healthy(tmp_path):
  run = _Run(tmp_path, steps=[1])
  guard = run.guard()
  assert guard.after_loop(2, 2.1) == "healthy"  # proves ckpt-1, which the loop started from
  guard.saved(run.saver.save(checkpoint_number=2))
  assert guard.after_loop(3, 7.0) == "ok"  # over 3x the lowest (2.0): ckpt-2 stays unproven
  guard.saved(run.saver.save(checkpoint_number=3))
  with pytest.raises(FloatingPointError) as stopped:
    guard.after_loop(4, 90.0)
  folder = next((tmp_path / "diverged").iterdir())
  assert str(stopped.value) == (
      f"Training diverged at step 4: the loss grew to 90 (the run's lowest was 2). Nothing of it was saved, and "
      f"ckpt-2, ckpt-3, saved since the loss was last healthy, were moved to {folder}; to go on from ckpt-1, the "
      "last healthy checkpoint, rerun with a lower learning rate (train.lr_base=0.05, a tenth, or "
      "train.gradient_clip) and --continue_with_new_settings.")
  assert run.left() == ["ckpt-1"] and sorted(p.name for p in folder.glob("*.index")) == ["ckpt-2.index", "ckpt-3.index"]


def test_values_out_of_bounds_are_a_divergence_whatever_the_loss_and_a_restored_checkpoint_is_unproven(tmp_path):
  run = _Run(tmp_path, steps=[5])
  with pytest.raises(FloatingPointError) as stopped:
    run.guard(values={"a/kernel": 1.0, "the EMA of b/moving_variance": VALUE_BOUND * 3}).after_loop(6, 2.0)
  assert str(stopped.value).startswith("Training diverged at step 6: the EMA of b/moving_variance reached 3e+06. "
                                       "Nothing of it was saved, and ckpt-5, saved since the loss was last healthy, "
                                       "was moved to ")
  assert str(stopped.value).endswith("; no healthy checkpoint is left: start again with a lower learning rate "
                                     "(train.lr_base=0.05, a tenth, or train.gradient_clip).")
  assert run.left() == []


def test_a_jump_is_a_warning_and_leaves_the_checkpoints_where_they_are(tmp_path, capsys):
  run = _Run(tmp_path, steps=[1])
  guard = run.guard(losses=[0.5] * 5)
  assert guard.after_loop(2, 6.0) == "jump"  # under 10x a uniform guess's (16.1): not a divergence
  assert "warning: at step 2 the loss jumped to 6, 12x its recent median (0.5)" in capsys.readouterr().err
  assert run.left() == ["ckpt-1"] and guard.unproven == [str(tmp_path / "checkpoints" / "ckpt-1")]


def test_the_advice_bounds_the_rate_by_the_healthy_loops_so_that_it_is_followed_in_a_round_or_two(tmp_path):
  """A warm-up to 1.6 over 100 steps (lr_base 0.5): diverged on the way up after a healthy loop at 0.16, the advice
  puts the next run's peak at half of that (0.5 x 0.08 / 1.6 = 0.025), not a tenth; a run that never had a healthy
  loop is told a hundredth; a run that was healthy near its peak, a tenth."""
  def warm_up(step):
    return 1.6 * min(step / 100, 1.0)

  def advice(healthy_steps, diverged_at):
    run = _Run(tmp_path / f"run{diverged_at}")
    guard = DivergenceGuard(LossWatch(5, (2.0,)), run.run_dir, lr_base=0.5, is_chief=True,
                            largest_values=lambda: {"a/kernel": 1.0}, learning_rate=warm_up, total_steps=1000)
    for step in healthy_steps:
      assert guard.after_loop(step, 2.0) == "healthy"
    with pytest.raises(FloatingPointError) as stopped:
      guard.after_loop(diverged_at, 90.0)
    return str(stopped.value).split("start again with a lower learning rate (")[1]

  assert advice([5, 10], 20) == ("train.lr_base=0.025: the schedule's peak at half the highest rate a healthy loop "
                                 "trained at, 0.16, or train.gradient_clip).")
  assert advice([], 1) == ("train.lr_base=0.005, a hundredth: no loop of this run was healthy, or "
                           "train.gradient_clip).")
  assert advice([50, 90], 95).startswith("train.lr_base=0.05, a tenth, or")
