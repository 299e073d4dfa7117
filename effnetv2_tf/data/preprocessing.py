"""Per-image preprocessing: random crop straight from JPEG bytes, resize, flip, augment, normalize.

Images arrive as encoded JPEG bytes (TFRecords) or decoded uint8 tensors (TFDS); both work. The
normalization is the model family's (specs.ModelSpec.normalization).
"""

import tensorflow as tf

from effnetv2_tf.data.autoaugment import autoaugment
from effnetv2_tf.data.randaugment import randaugment
from effnetv2_tf.specs import MEAN_RGB, STDDEV_RGB

NORMALIZATIONS = ("center_128", "mean_std", "none")  # none: [0, 255], for models that rescale their own inputs
AUGMENTS = (None, "randaug", "autoaug")
CROP_PADDING = 32  # eval: center crop of size / (size + 32) of the shorter side


def normalize(images, normalization):
  """float images in [0, 255] -> the model's input range."""
  if normalization == "center_128":
    return (images - 128.0) / 128.0
  if normalization == "mean_std":
    return (images - MEAN_RGB) / STDDEV_RGB
  if normalization == "none":
    return images
  raise ValueError(f"Unknown normalization {normalization!r}; expected one of {NORMALIZATIONS}.")


def denormalize(images, normalization):
  """normalize's inverse: the model's input range -> float images in [0, 255]."""
  if normalization == "center_128":
    return images * 128.0 + 128.0
  if normalization == "mean_std":
    return images * STDDEV_RGB + MEAN_RGB
  if normalization == "none":
    return images
  raise ValueError(f"Unknown normalization {normalization!r}; expected one of {NORMALIZATIONS}.")


def resize_method(normalization):
  """The official pipelines resize bilinear (V2 S/M/L/XL) or bicubic (V1 preprocessing)."""
  return "bicubic" if normalization == "mean_std" else "bilinear"


def _crop(image, window_of):
  """Crops `image` to the window `window_of(shape)` gives: (offset_y, offset_x, height, width).

  A JPEG decodes only the window; other formats decode once, then slice.
  """
  def cut(pixels):
    offset_y, offset_x, height, width = window_of(tf.shape(pixels))
    return pixels[offset_y:offset_y + height, offset_x:offset_x + width, :3]

  if image.dtype != tf.string:
    return cut(image)

  def jpeg():
    window = tf.stack(window_of(tf.image.extract_jpeg_shape(image)))
    # A truncated JPEG decodes with grey for what is missing instead of stopping the pipeline.
    return tf.image.decode_and_crop_jpeg(image, window, channels=3, try_recover_truncated=True,
                                         acceptable_fraction=0.25)

  return tf.cond(tf.io.is_jpeg(image), jpeg,
                 lambda: cut(tf.io.decode_image(image, channels=3, expand_animations=False)))


def is_decodable(image):
  """Whether encoded bytes start like a JPEG, PNG, GIF or BMP (decoded tensors always are)."""
  if image.dtype != tf.string:
    return tf.constant(True)
  head = tf.strings.substr(image, 0, 4)
  return tf.io.is_jpeg(image) | tf.reduce_any(tf.equal(head, [b"\x89PNG", b"GIF8"])) | tf.equal(
      tf.strings.substr(image, 0, 2), b"BM")


def random_crop_window(image_shape, seed, area_range=(0.05, 1.0), aspect_ratio_range=(3 / 4, 4 / 3),
                       max_attempts=100):
  """(offset_y, offset_x, height, width) of a random crop covering `area_range` of the image."""
  begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
      image_shape, bounding_boxes=tf.constant([0.0, 0.0, 1.0, 1.0], shape=(1, 1, 4)), seed=seed,
      min_object_covered=0.0, aspect_ratio_range=aspect_ratio_range, area_range=area_range,
      max_attempts=max_attempts, use_image_if_no_bounding_boxes=True)
  return begin[0], begin[1], size[0], size[1]


def center_crop_window(image_shape, image_size):
  """The official eval crop: size / (size + 32) of the shorter side below 320 px, else the whole image."""
  height, width = image_shape[0], image_shape[1]
  if image_size >= 320:
    return tf.constant(0), tf.constant(0), height, width
  side = tf.cast(image_size / (image_size + CROP_PADDING) * tf.cast(tf.minimum(height, width), tf.float64),
                 tf.int32)
  side = tf.maximum(side, 1)  # a tiny image (1 px) is upsampled, not cropped to nothing
  return ((height - side) + 1) // 2, ((width - side) + 1) // 2, side, side


def _augment(image, augment, magnitude, seed, num_layers):
  pixels = tf.cast(tf.clip_by_value(image, 0.0, 255.0), tf.uint8)
  if augment == "randaug":
    pixels = randaugment(pixels, magnitude, seed, num_layers)
  elif augment == "autoaug":
    pixels = autoaugment(pixels, seed)
  else:
    raise ValueError(f"Unknown augment {augment!r}; expected one of {AUGMENTS}.")
  return tf.cast(pixels, tf.float32)


def preprocess_for_train(image, seed, image_size, normalization, augment=None, magnitude=10.0, num_layers=2,
                         dtype=tf.float32, crop_area_min=0.05):
  """Random crop (area crop_area_min-1), resize, random flip, optional RandAugment/AutoAugment, normalize.

  Args:
    image: JPEG bytes (scalar string) or uint8 [H, W, C].
    seed: [2] stateless seed; the same seed gives the same output.
    image_size: output side in pixels (the progressive-learning stage's size).
    normalization: "center_128" or "mean_std".
    augment: None, "randaug" or "autoaug".
    magnitude: RandAugment magnitude m.
    num_layers: RandAugment ops per image.
    dtype: output dtype (float32 or bfloat16).
    crop_area_min: smallest crop, as a fraction of the image area (official 0.05).
  """
  crop_seed, flip_seed, augment_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=3))
  image = _crop(image, lambda shape: random_crop_window(shape, crop_seed, area_range=(crop_area_min, 1.0)))
  image = tf.image.resize(image, (image_size, image_size), method=resize_method(normalization))
  image = tf.image.stateless_random_flip_left_right(image, flip_seed)
  if augment:
    image = _augment(image, augment, magnitude, augment_seed, num_layers)
  image = normalize(image, normalization)
  image.set_shape((image_size, image_size, 3))
  return tf.cast(image, dtype)


def preprocess_for_eval(image, image_size, normalization, dtype=tf.float32):
  """The official eval transform: center crop (below 320 px), resize, normalize."""
  image = _crop(image, lambda shape: center_crop_window(shape, image_size))
  image = tf.image.resize(image, (image_size, image_size), method=resize_method(normalization))
  image = normalize(image, normalization)
  image.set_shape((image_size, image_size, 3))
  return tf.cast(image, dtype)
