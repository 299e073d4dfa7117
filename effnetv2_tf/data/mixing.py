"""Mixup and CutMix on batches with one-hot (or soft) labels.

Each example is mixed with the batch reversed. Mixup: per-example lambda ~ Beta(a, a), folded to
max(lambda, 1 - lambda). CutMix: a box whose area fraction is 1 - Beta(a, a) draws (side ratio
sqrt(1 - lambda)), centred uniformly and clipped to the image; the label weight is each example's own
box area (the official code averaged it over the batch). When both are on, the first half of the
batch gets mixup and the second CutMix. Alpha 0 turns a method off at no cost.
"""

import tensorflow as tf


def _beta(shape, alpha, seed):
  """Beta(alpha, alpha) from two Gamma draws (core TF has no stateless Beta)."""
  seed_x, seed_y = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
  x = tf.random.stateless_gamma(shape, seed_x, alpha)
  y = tf.random.stateless_gamma(shape, seed_y, alpha)
  return x / (x + y)


def mixup(images, labels, alpha, seed):
  batch = tf.shape(images)[0]
  lam = _beta((batch,), alpha, seed)
  lam = tf.maximum(lam, 1.0 - lam)
  image_lam = tf.cast(tf.reshape(lam, (-1, 1, 1, 1)), images.dtype)
  images = image_lam * images + (1 - image_lam) * images[::-1]
  label_lam = tf.cast(lam[:, tf.newaxis], labels.dtype)
  return images, label_lam * labels + (1 - label_lam) * labels[::-1]


def cutmix(images, labels, alpha, seed):
  shape = tf.shape(images)
  batch, height, width = shape[0], shape[1], shape[2]
  lam_seed, center_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
  side_ratio = tf.sqrt(1.0 - _beta((batch,), alpha, lam_seed))
  cut_h = tf.cast(side_ratio * tf.cast(height, tf.float32), tf.int32)
  cut_w = tf.cast(side_ratio * tf.cast(width, tf.float32), tf.int32)
  centers = tf.random.stateless_uniform((batch, 2), center_seed, 0, tf.int32.max, dtype=tf.int32)
  center_y, center_x = centers[:, 0] % height, centers[:, 1] % width
  top = tf.clip_by_value(center_y - cut_h // 2, 0, height)
  bottom = tf.clip_by_value(center_y + cut_h // 2, 0, height)
  left = tf.clip_by_value(center_x - cut_w // 2, 0, width)
  right = tf.clip_by_value(center_x + cut_w // 2, 0, width)
  rows = tf.range(height)[tf.newaxis, :, tf.newaxis]
  cols = tf.range(width)[tf.newaxis, tf.newaxis, :]
  inside = ((rows >= top[:, None, None]) & (rows < bottom[:, None, None]) &
            (cols >= left[:, None, None]) & (cols < right[:, None, None]))
  images = tf.where(inside[..., tf.newaxis], images[::-1], images)
  area = tf.cast((bottom - top) * (right - left), tf.float32) / tf.cast(height * width, tf.float32)
  area = tf.cast(area[:, tf.newaxis], labels.dtype)
  return images, (1 - area) * labels + area * labels[::-1]


def mix_batch(images, labels, mixup_alpha, cutmix_alpha, seed):
  """Applies mixup and/or CutMix (Python float alphas, 0 = off) to a batch."""
  if mixup_alpha > 0 and cutmix_alpha > 0:
    mixup_seed, cutmix_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    half = tf.shape(images)[0] // 2
    mixed_a = mixup(images[:half], labels[:half], mixup_alpha, mixup_seed)
    mixed_b = cutmix(images[half:], labels[half:], cutmix_alpha, cutmix_seed)
    return tf.concat([mixed_a[0], mixed_b[0]], 0), tf.concat([mixed_a[1], mixed_b[1]], 0)
  if mixup_alpha > 0:
    return mixup(images, labels, mixup_alpha, seed)
  if cutmix_alpha > 0:
    return cutmix(images, labels, cutmix_alpha, seed)
  return images, labels
