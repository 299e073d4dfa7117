import numpy as np
import tensorflow as tf

import keras
import pytest

from effnetv2_tf.train.optimizer import RMSPropTF1, reset_momenta


def test_rmsprop_follows_tf1_semantics():
  """ms starts at 1, eps inside the sqrt, lr folded into the momentum buffer."""
  lr, rho, momentum, eps = 0.1, 0.9, 0.9, 1e-3
  variable = tf.Variable([1.0, -2.0])
  optimizer = RMSPropTF1(lr, rho, momentum, eps)
  optimizer.build([variable])
  ms, mom, w = np.ones(2), np.zeros(2), np.array([1.0, -2.0])
  for gradient in ([0.5, -1.0], [0.2, 0.3], [-0.4, 0.1]):
    optimizer.apply_gradients([(tf.constant(gradient), variable)])
    g = np.array(gradient)
    ms = rho * ms + (1 - rho) * g * g
    mom = momentum * mom + lr * g / np.sqrt(ms + eps)
    w = w - mom
    np.testing.assert_allclose(variable.numpy(), w, rtol=1e-6)


def test_only_the_mean_square_slot_starts_at_one():
  variable = tf.Variable(tf.zeros((3,)))
  optimizer = RMSPropTF1()
  optimizer.build([variable])
  np.testing.assert_array_equal(optimizer._velocities[0].numpy(), np.ones(3))
  np.testing.assert_array_equal(optimizer._momentums[0].numpy(), np.zeros(3))


@pytest.mark.parametrize("optimizer", [RMSPropTF1(0.1), keras.optimizers.SGD(0.1, momentum=0.9),
                                       keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1, momentum=0.9))],
                         ids=["rmsprop", "momentum", "loss-scaled"])
def test_reset_momenta_zeroes_the_momenta_and_keeps_the_gradient_statistics(optimizer):
  variable = tf.Variable([1.0, -2.0])
  optimizer.build([variable])
  optimizer.apply_gradients([(tf.constant([0.5, -1.0]), variable)])
  before = {v.path: v.numpy() for v in optimizer.variables}
  reset_momenta(optimizer)
  momenta = [path for path in before if path.endswith("_momentum")]
  assert len(momenta) == 1 and np.abs(before[momenta[0]]).min() > 0
  for v in optimizer.variables:
    np.testing.assert_array_equal(v.numpy(), 0.0 * before[v.path] if v.path in momenta else before[v.path])
