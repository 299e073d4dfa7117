"""Augmentation ops against PIL and an independent numpy reference, on real photos."""

import math

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageOps

from effnetv2_tf.data import augment_ops as ops
from effnetv2_tf.data.randaugment import RANDAUGMENT_OPS, apply_op

SEED = tf.constant([3, 4], tf.int32)
# Magnitude at which each op leaves the image unchanged under the official mapping (None: no level).
IDENTITY_MAGNITUDE = {"Rotate": 0, "ShearX": 0, "ShearY": 0, "TranslateX": 0, "TranslateY": 0, "Cutout": 0,
                      "SolarizeAdd": 0, "Color": 5, "Contrast": 5, "Brightness": 5, "Sharpness": 5,
                      "Posterize": 20, "Solarize": 10, "AutoContrast": None, "Equalize": None, "Invert": None}
# Solarize at m = 10 is the official no-op (threshold 256); it is strongest at small m.
STRONG_MAGNITUDE = {"Solarize": 5}


def _low_contrast(photo):
  # Real photos often span 0..255 already; squeeze them so AutoContrast / Equalize have work to do.
  return (photo.astype(np.float32) * 0.6 + 50).astype(np.uint8)


def test_every_op_of_the_official_list_is_there():
  assert sorted(RANDAUGMENT_OPS) == sorted(IDENTITY_MAGNITUDE) and len(RANDAUGMENT_OPS) == 16


@pytest.mark.parametrize("name", sorted(IDENTITY_MAGNITUDE))
def test_op_identity_and_strong_levels(name, flower_photos):
  image = tf.constant(_low_contrast(flower_photos[0]))
  strong = apply_op(image, name, STRONG_MAGNITUDE.get(name, 10), SEED)
  assert strong.dtype == tf.uint8 and strong.shape == image.shape
  assert not np.array_equal(strong, image), f"{name} at its strong level left the image unchanged"
  if IDENTITY_MAGNITUDE[name] is not None:
    np.testing.assert_array_equal(apply_op(image, name, IDENTITY_MAGNITUDE[name], SEED), image)


@pytest.mark.parametrize("name", sorted(IDENTITY_MAGNITUDE))
def test_op_runs_in_a_dataset_map_on_any_size(name):
  images = tf.data.Dataset.from_tensor_slices(
      [np.full((37, 53, 3), 90, np.uint8), np.arange(37 * 53 * 3, dtype=np.uint8).reshape(37, 53, 3)])
  outputs = list(images.map(lambda image: apply_op(image, name, 7.0, SEED)).as_numpy_iterator())
  assert [o.shape for o in outputs] == [(37, 53, 3)] * 2 and all(o.dtype == np.uint8 for o in outputs)


@pytest.mark.parametrize("threshold", [0, 77, 128, 200])
def test_solarize_matches_pil(flower_photos, threshold):
  for photo in flower_photos:
    expected = np.asarray(ImageOps.solarize(Image.fromarray(photo), threshold))
    np.testing.assert_array_equal(ops.solarize(tf.constant(photo), threshold), expected)


@pytest.mark.parametrize("bits", [1, 2, 4, 7, 8])
def test_posterize_matches_pil(flower_photos, bits):
  for photo in flower_photos:
    expected = np.asarray(ImageOps.posterize(Image.fromarray(photo), bits))
    np.testing.assert_array_equal(ops.posterize(tf.constant(photo), bits), expected)


def test_equalize_matches_pil(flower_photos):
  for photo in flower_photos + [_low_contrast(p) for p in flower_photos]:
    expected = np.asarray(ImageOps.equalize(Image.fromarray(photo)))
    np.testing.assert_array_equal(ops.equalize(tf.constant(photo)), expected)


def test_autocontrast_matches_pil(flower_photos):
  for photo in [_low_contrast(p) for p in flower_photos]:
    expected = np.asarray(ImageOps.autocontrast(Image.fromarray(photo)))
    np.testing.assert_array_equal(ops.autocontrast(tf.constant(photo)), expected)


def _nearest_reference(image, in_coords, fill=ops.FILL):
  """out[y, x] = image[round(in_y), round(in_x)], fill outside; in_coords(x, y) -> (in_x, in_y)."""
  height, width = image.shape[:2]
  ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
  in_x, in_y = in_coords(xs, ys)
  round_half_away = lambda v: (np.sign(v) * np.floor(np.abs(v) + 0.5)).astype(int)
  in_x, in_y = round_half_away(in_x), round_half_away(in_y)
  valid = (in_x >= 0) & (in_x < width) & (in_y >= 0) & (in_y < height)
  out = np.full_like(image, fill)
  out[valid] = image[in_y[valid], in_x[valid]]
  return out


def _assert_nearly_equal(ours, expected):
  # Rounding of coordinates that sit exactly on .5 may differ in float32; allow a sliver of pixels.
  assert (np.asarray(ours) != expected).any(axis=-1).mean() < 0.002


@pytest.mark.parametrize("degrees", [30.0, -17.0])
def test_rotate_matches_numpy(flower_photos, degrees):
  photo = flower_photos[1]
  theta = math.radians(degrees)
  cy, cx = (photo.shape[0] - 1) / 2, (photo.shape[1] - 1) / 2

  def about_centre(x, y):  # inverse map: rotate the output point back about the centre
    return (math.cos(theta) * (x - cx) - math.sin(theta) * (y - cy) + cx,
            math.sin(theta) * (x - cx) + math.cos(theta) * (y - cy) + cy)

  _assert_nearly_equal(ops.rotate(tf.constant(photo), degrees), _nearest_reference(photo, about_centre))


@pytest.mark.parametrize("level", [0.3, -0.21])
def test_shear_matches_numpy(flower_photos, level):
  photo = flower_photos[2]
  _assert_nearly_equal(ops.shear_x(tf.constant(photo), level),
                       _nearest_reference(photo, lambda x, y: (x + level * y, y)))
  _assert_nearly_equal(ops.shear_y(tf.constant(photo), level),
                       _nearest_reference(photo, lambda x, y: (x, y + level * x)))


@pytest.mark.parametrize("pixels", [13, -40])
def test_translate_matches_numpy(flower_photos, pixels):
  photo = flower_photos[3]
  np.testing.assert_array_equal(ops.translate_x(tf.constant(photo), pixels),
                                _nearest_reference(photo, lambda x, y: (x + pixels, y)))
  np.testing.assert_array_equal(ops.translate_y(tf.constant(photo), pixels),
                                _nearest_reference(photo, lambda x, y: (x, y + pixels)))


def test_cutout_fills_the_clipped_box():
  image = np.zeros((20, 30, 3), np.uint8)
  out = ops.cutout(tf.constant(image), 5, 2, 27).numpy()
  expected = image.copy()
  expected[0:7, 22:30] = ops.FILL
  np.testing.assert_array_equal(out, expected)


def test_enhance_ops_blend_like_pil():
  from PIL import ImageEnhance
  rng = np.random.default_rng(0)
  photo = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
  # Brightness blends with black exactly as PIL does.
  for factor in (0.3, 1.6):
    expected = np.asarray(ImageEnhance.Brightness(Image.fromarray(photo)).enhance(factor)).astype(int)
    ours = ops.brightness(tf.constant(photo), factor).numpy().astype(int)
    assert np.abs(ours - expected).max() <= 1
