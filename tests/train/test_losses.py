import numpy as np
import tensorflow as tf

from effnetv2_tf.model import create_model
from effnetv2_tf.train import losses


def test_label_smoothing_is_the_official_formula():
  labels = tf.constant([[0.0, 1.0, 0.0, 0.0]])
  logits = tf.constant([[0.3, 2.0, -1.0, 0.5]])
  smoothed = np.array([[0.025, 0.925, 0.025, 0.025]])  # y * (1 - 0.1) + 0.1 / 4
  expected = -(smoothed * tf.nn.log_softmax(logits).numpy()).sum()
  np.testing.assert_allclose(losses.classification_loss(labels, logits, 0.1), [expected], rtol=1e-6)
  sigmoid = losses.classification_loss(labels, logits, 0.0, "sigmoid")
  np.testing.assert_allclose(sigmoid, tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels, logits)),
                             rtol=1e-6)


def test_weight_decay_covers_kernels_only():
  model = create_model("efficientnetv2-b0", width=0.25, depth=0.25, num_classes=3)
  decayed = losses.decayed_variables(model.trainable_variables)
  assert decayed and all(v.path.endswith("kernel") for v in decayed)
  assert len(decayed) == sum(1 for v in model.trainable_variables if v.path.endswith("kernel"))
  expected = 1e-5 * sum(0.5 * np.sum(np.square(v.numpy())) for v in decayed)
  np.testing.assert_allclose(float(losses.weight_decay_loss(decayed, 1e-5)), expected, rtol=1e-5)
