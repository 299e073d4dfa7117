"""Image operations of AutoAugment / RandAugment on uint8 HWC RGB images, in core TensorFlow.

Every op is a pure function of the image and its arguments (random choices are made by the caller), so
it runs eagerly, in tf.function and in tf.data map functions. Geometric ops use
ImageProjectiveTransformV3 (nearest neighbour, constant fill): it has no XLA kernel, so keep them in the
host input pipeline, never inside a compiled step.

Semantics follow PIL's ImageOps / ImageEnhance as the official code does, except `contrast`, which
blends towards the true mean grey level as PIL does (the official TF op used pixel-count / 256).
"""

import math

import tensorflow as tf

FILL = 128  # grey fill of the official geometric ops and cutout


def _blend(degenerate, image, factor):
  """degenerate + factor * (image - degenerate), clipped to [0, 255] (PIL's Image.blend)."""
  degenerate = tf.cast(degenerate, tf.float32)
  mixed = degenerate + tf.cast(factor, tf.float32) * (tf.cast(image, tf.float32) - degenerate)
  return tf.cast(tf.clip_by_value(mixed, 0.0, 255.0), tf.uint8)


def _transform(image, transform, fill=FILL):
  """Applies an 8-value projective transform mapping OUTPUT (x, y) to INPUT coordinates."""
  transformed = tf.raw_ops.ImageProjectiveTransformV3(
      images=image[tf.newaxis], transforms=tf.cast(tf.reshape(transform, (1, 8)), tf.float32),
      output_shape=tf.shape(image)[:2], fill_value=tf.constant(fill, tf.float32), interpolation="NEAREST",
      fill_mode="CONSTANT")
  return transformed[0]


def identity(image):
  return image


def autocontrast(image):
  """Stretches each channel so its min maps to 0 and its max to 255 (constant channels stay)."""
  # float64 like PIL's lookup table: in float32, values that should land exactly on an integer can
  # round up past it and come out one higher.
  pixels = tf.cast(image, tf.float64)
  low = tf.reduce_min(pixels, axis=(0, 1))
  high = tf.reduce_max(pixels, axis=(0, 1))
  scale = tf.where(high > low, 255.0 / tf.maximum(high - low, 1.0), 1.0)
  offset = tf.where(high > low, -low * scale, 0.0)
  return tf.cast(tf.clip_by_value(pixels * scale + offset, 0.0, 255.0), tf.uint8)


def _equalize_channel(channel):
  histogram = tf.math.bincount(tf.cast(channel, tf.int32), minlength=256, maxlength=256)
  last_nonzero = tf.gather(histogram, tf.reduce_max(tf.where(histogram > 0)))
  step = (tf.reduce_sum(histogram) - last_nonzero) // 255

  def equalized():
    lut = (tf.cumsum(histogram, exclusive=True) + step // 2) // tf.maximum(step, 1)
    return tf.cast(tf.gather(tf.clip_by_value(lut, 0, 255), tf.cast(channel, tf.int32)), tf.uint8)

  return tf.cond(step > 0, equalized, lambda: channel)


def equalize(image):
  """Per-channel histogram equalization with PIL's lookup table."""
  return tf.stack([_equalize_channel(image[..., c]) for c in range(3)], axis=-1)


def invert(image):
  return 255 - image


def rotate(image, degrees, fill=FILL):
  """Rotates counter-clockwise about the image centre."""
  radians = tf.cast(degrees, tf.float32) * (math.pi / 180.0)
  height = tf.cast(tf.shape(image)[0], tf.float32)
  width = tf.cast(tf.shape(image)[1], tf.float32)
  cos, sin = tf.cos(radians), tf.sin(radians)
  x_offset = ((width - 1) - (cos * (width - 1) - sin * (height - 1))) / 2.0
  y_offset = ((height - 1) - (sin * (width - 1) + cos * (height - 1))) / 2.0
  return _transform(image, tf.stack([cos, -sin, x_offset, sin, cos, y_offset, 0.0, 0.0]), fill)


def shear_x(image, level, fill=FILL):
  """out[y, x] = in[y, x + level * y]."""
  level = tf.cast(level, tf.float32)
  return _transform(image, tf.stack([1.0, level, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]), fill)


def shear_y(image, level, fill=FILL):
  """out[y, x] = in[y + level * x, x]."""
  level = tf.cast(level, tf.float32)
  return _transform(image, tf.stack([1.0, 0.0, 0.0, level, 1.0, 0.0, 0.0, 0.0]), fill)


def translate_x(image, pixels, fill=FILL):
  """out[y, x] = in[y, x + pixels]: content moves left by `pixels`."""
  pixels = tf.cast(pixels, tf.float32)
  return _transform(image, tf.stack([1.0, 0.0, pixels, 0.0, 1.0, 0.0, 0.0, 0.0]), fill)


def translate_y(image, pixels, fill=FILL):
  """out[y, x] = in[y + pixels, x]: content moves up by `pixels`."""
  pixels = tf.cast(pixels, tf.float32)
  return _transform(image, tf.stack([1.0, 0.0, 0.0, 0.0, 1.0, pixels, 0.0, 0.0]), fill)


def posterize(image, bits):
  """Keeps the `bits` most significant bits of every value (0 bits gives black)."""
  shift = tf.cast(8 - tf.clip_by_value(tf.cast(bits, tf.int32), 0, 8), tf.uint8)
  return tf.bitwise.left_shift(tf.bitwise.right_shift(image, shift), shift)


def solarize(image, threshold):
  """Inverts every value at or above `threshold` (256 or more: no-op)."""
  threshold = tf.cast(threshold, tf.int32)
  return tf.where(tf.cast(image, tf.int32) < threshold, image, 255 - image)


def solarize_add(image, addition, threshold=128):
  """Adds `addition` (clipped to [0, 255]) to every value below `threshold`."""
  added = tf.clip_by_value(tf.cast(image, tf.int32) + tf.cast(addition, tf.int32), 0, 255)
  return tf.where(tf.cast(image, tf.int32) < threshold, tf.cast(added, tf.uint8), image)


def _grayscale_rgb(image):
  return tf.image.grayscale_to_rgb(tf.image.rgb_to_grayscale(image))


def color(image, factor):
  """Blends with the grey image: 0 grey, 1 unchanged, >1 more saturated."""
  return _blend(_grayscale_rgb(image), image, factor)


def contrast(image, factor):
  """Blends with a flat image at the mean grey level: 0 flat, 1 unchanged."""
  mean = tf.round(tf.reduce_mean(tf.cast(tf.image.rgb_to_grayscale(image), tf.float32)))
  return _blend(tf.fill(tf.shape(image), mean), image, factor)


def brightness(image, factor):
  """Blends with black: 0 black, 1 unchanged."""
  return _blend(tf.zeros_like(image), image, factor)


def sharpness(image, factor):
  """Blends with PIL's SMOOTH-filtered image (3x3 kernel, centre 5, border pixels kept)."""
  kernel = tf.constant([[1, 1, 1], [1, 5, 1], [1, 1, 1]], tf.float32) / 13.0
  kernel = tf.tile(kernel[:, :, tf.newaxis, tf.newaxis], (1, 1, 3, 1))
  smooth = tf.nn.depthwise_conv2d(tf.cast(image, tf.float32)[tf.newaxis], kernel, (1, 1, 1, 1), "VALID")[0]
  smooth = tf.cast(tf.clip_by_value(tf.round(smooth), 0.0, 255.0), tf.uint8)
  interior = tf.pad(tf.ones_like(smooth, tf.bool), ((1, 1), (1, 1), (0, 0)))
  degenerate = tf.where(interior, tf.pad(smooth, ((1, 1), (1, 1), (0, 0))), image)
  return _blend(degenerate, image, factor)


def cutout(image, pad_size, center_y, center_x, fill=FILL):
  """Fills the box rows [cy - pad, cy + pad), cols [cx - pad, cx + pad), clipped to the image."""
  rows = tf.range(tf.shape(image)[0])[:, tf.newaxis]
  cols = tf.range(tf.shape(image)[1])[tf.newaxis, :]
  pad_size = tf.cast(pad_size, tf.int32)
  inside = ((rows >= center_y - pad_size) & (rows < center_y + pad_size) &
            (cols >= center_x - pad_size) & (cols < center_x + pad_size))
  return tf.where(inside[..., tf.newaxis], tf.constant(fill, tf.uint8), image)
