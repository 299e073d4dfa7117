import numpy as np
import pytest

from effnetv2_tf.train.lr_schedule import WarmupDecay


def test_warmup_then_staircase_exponential():
  schedule = WarmupDecay(0.256, total_steps=1000, warmup_steps=10, schedule="exponential", decay_steps=24,
                         decay_factor=0.97)
  values = [float(schedule(step)) for step in (0, 5, 10, 23, 24, 48, 500)]
  expected = [0.0, 0.128, 0.256, 0.256, 0.256 * 0.97, 0.256 * 0.97 ** 2, 0.256 * 0.97 ** (500 // 24)]
  np.testing.assert_allclose(values, expected, rtol=1e-5)


def test_cosine_linear_and_constant():
  cosine = WarmupDecay(1.0, total_steps=100, schedule="cosine")
  np.testing.assert_allclose([float(cosine(s)) for s in (0, 50, 100)], [1.0, 0.5, 0.0], atol=1e-6)
  linear = WarmupDecay(1.0, total_steps=100, schedule="linear", lr_min=0.1)
  np.testing.assert_allclose([float(linear(s)) for s in (0, 50, 95)], [1.0, 0.5, 0.1], atol=1e-6)
  constant = WarmupDecay(0.5, total_steps=100, warmup_steps=4, schedule="constant")
  np.testing.assert_allclose([float(constant(s)) for s in (1, 4, 99)], [0.125, 0.5, 0.5], atol=1e-6)


def test_config_round_trip_and_bad_name():
  schedule = WarmupDecay(0.1, 10, 2, "cosine")
  assert WarmupDecay(**schedule.get_config()).get_config() == schedule.get_config()
  with pytest.raises(ValueError, match="Unknown lr schedule 'step'"):
    WarmupDecay(0.1, 10, schedule="step")
