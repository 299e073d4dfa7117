import numpy as np
import tensorflow as tf

from effnetv2_tf.train.optimizer import RMSPropTF1


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
