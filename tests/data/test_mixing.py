import numpy as np
import tensorflow as tf

from effnetv2_tf.data import mixing

SEED = tf.constant([5, 6])


def _batch(size=8, side=16, classes=4):
  rng = np.random.default_rng(0)
  images = tf.constant(rng.uniform(0, 1, (size, side, side, 3)).astype(np.float32))
  labels = tf.one_hot(rng.integers(0, classes, size), classes)
  return images, labels


def test_mixup_is_the_documented_convex_combination():
  images, labels = _batch()
  mixed_images, mixed_labels = mixing.mixup(images, labels, 0.4, SEED)
  np.testing.assert_allclose(tf.reduce_sum(mixed_labels, axis=1), 1.0, rtol=1e-6)
  # Recover each example's lambda from its labels and check the pixels used the same one.
  for i in range(images.shape[0]):
    j = images.shape[0] - 1 - i
    lam = float(tf.reduce_sum(mixed_labels[i] * labels[i]))
    if not np.array_equal(labels[i], labels[j]):
      assert lam >= 0.5 - 1e-6
      np.testing.assert_allclose(mixed_images[i], lam * images[i] + (1 - lam) * images[j], atol=1e-5)


def test_cutmix_pastes_a_box_and_weights_labels_by_its_area():
  images, labels = _batch()
  mixed_images, mixed_labels = mixing.cutmix(images, labels, 1.0, SEED)
  np.testing.assert_allclose(tf.reduce_sum(mixed_labels, axis=1), 1.0, rtol=1e-6)
  n = images.shape[0]
  for i in range(n):
    from_other = np.all(mixed_images[i].numpy() == images[n - 1 - i].numpy(), axis=-1)
    changed = ~np.all(mixed_images[i].numpy() == images[i].numpy(), axis=-1)
    assert np.array_equal(from_other, changed | (from_other & ~changed))
    rows, cols = np.nonzero(changed)
    if rows.size:  # the pasted region is one axis-aligned box
      assert changed[rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()
    area = changed.mean()
    if not np.array_equal(labels[i], labels[n - 1 - i]):
      np.testing.assert_allclose(float(tf.reduce_sum(mixed_labels[i] * labels[n - 1 - i])), area, atol=1e-6)


def test_both_on_splits_the_batch_and_zero_alpha_costs_nothing():
  images, labels = _batch()
  mixed_images, mixed_labels = mixing.mix_batch(images, labels, 0.8, 0.8, SEED)
  assert mixed_images.shape == images.shape
  np.testing.assert_allclose(tf.reduce_sum(mixed_labels, axis=1), 1.0, rtol=1e-6)
  same_images, same_labels = mixing.mix_batch(images, labels, 0.0, 0.0, SEED)
  assert same_images is images and same_labels is labels
