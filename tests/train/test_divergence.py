import math

from effnetv2_tf.train.divergence import VALUE_BOUND, LossWatch, value_problem


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
