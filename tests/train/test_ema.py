import numpy as np
import tensorflow as tf

from effnetv2_tf.model import create_model
from effnetv2_tf.engines.tf.ema import ExponentialMovingAverage
from effnetv2_tf.weights.ema import averaged_variables


def test_shadow_equals_the_hand_computed_average():
  variable = tf.Variable(0.0)
  ema = ExponentialMovingAverage([variable], decay=0.5)
  expected = 0.0
  for step, value in enumerate([4.0, 8.0, -2.0, 6.0]):
    variable.assign(value)
    ema.update(step)
    decay = min(0.5, (1 + step) / (10 + step))  # the official num_updates warm-up
    expected = decay * expected + (1 - decay) * value
    np.testing.assert_allclose(ema.shadows[0].numpy(), expected, rtol=1e-6)


def test_averaged_weights_swap_in_and_back():
  model = create_model("efficientnetv2-b0", width=0.25, depth=0.25, num_classes=3, classifier_activation=None)
  variables = averaged_variables(model)
  assert any(v.path.endswith("moving_mean") for v in variables)  # BN statistics are averaged too
  ema = ExponentialMovingAverage(variables, decay=0.9)
  x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
  raw = model(x, training=False).numpy()
  for v in model.trainable_variables:
    v.assign(v * 1.5)
  ema.update(1000)
  trained = model(x, training=False).numpy()
  with ema.averaged_weights():
    averaged = model(x, training=False).numpy()
  assert not np.allclose(averaged, trained) and not np.allclose(averaged, raw)
  np.testing.assert_array_equal(model(x, training=False), trained)
