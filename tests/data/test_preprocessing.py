import numpy as np
import pytest
import tensorflow as tf

from effnetv2_tf.data import preprocessing


def test_random_crop_area_stays_in_range():
  areas = []
  for draw in range(400):
    _, _, height, width = preprocessing.random_crop_window(tf.constant([300, 400, 3]), tf.constant([draw, 5]))
    areas.append(int(height) * int(width) / (300 * 400))
  assert min(areas) >= 0.05 * 0.9 and max(areas) <= 1.0  # the sampler rounds the box to whole pixels
  assert np.percentile(areas, 90) > 0.6 and np.percentile(areas, 10) < 0.3  # it really spans the range


def test_random_crop_is_reproducible_by_seed():
  first = preprocessing.random_crop_window(tf.constant([300, 400, 3]), tf.constant([1, 2]))
  second = preprocessing.random_crop_window(tf.constant([300, 400, 3]), tf.constant([1, 2]))
  assert [int(v) for v in first] == [int(v) for v in second]


def test_center_crop_follows_the_official_rule():
  shape = tf.constant([375, 500, 3])
  offset_y, offset_x, height, width = [int(v) for v in preprocessing.center_crop_window(shape, 224)]
  side = int(224 / (224 + 32) * 375)  # 328
  assert (height, width) == (side, side) and (offset_y, offset_x) == ((375 - side + 1) // 2, (500 - side + 1) // 2)
  # At 320 px and above the official rule keeps the whole image.
  assert [int(v) for v in preprocessing.center_crop_window(shape, 384)] == [0, 0, 375, 500]


def test_train_preprocessing_from_jpeg_bytes_and_from_pixels_agree_in_shape(flower_photos):
  photo = flower_photos[0]
  jpeg = tf.io.encode_jpeg(photo)
  for image in (jpeg, tf.constant(photo)):
    out = preprocessing.preprocess_for_train(image, tf.constant([1, 2]), 48, "center_128", "randaug", 10.0)
    assert out.shape == (48, 48, 3) and out.dtype == tf.float32
    assert -1.0 <= float(tf.reduce_min(out)) and float(tf.reduce_max(out)) <= 1.0


def test_png_bytes_crop_exactly_as_their_pixels(flower_photos):
  photo = flower_photos[2]
  png = tf.io.encode_png(photo)
  for seed in ([1, 2], [3, 4]):
    from_png, from_pixels = (preprocessing.preprocess_for_train(image, tf.constant(seed), 24, "center_128")
                             for image in (png, tf.constant(photo)))
    np.testing.assert_array_equal(from_png, from_pixels)
  np.testing.assert_array_equal(preprocessing.preprocess_for_eval(png, 24, "center_128"),
                                preprocessing.preprocess_for_eval(tf.constant(photo), 24, "center_128"))


def test_eval_preprocessing_matches_a_manual_crop_resize_normalize(flower_photos):
  photo = flower_photos[1]  # 64 x 64
  out = preprocessing.preprocess_for_eval(tf.constant(photo), 32, "mean_std").numpy()
  side = int(32 / 64 * 64)
  start = (64 - side + 1) // 2
  crop = photo[start:start + side, start:start + side].astype(np.float32)
  expected = tf.image.resize(crop, (32, 32), method="bicubic").numpy()
  expected = (expected - preprocessing.MEAN_RGB) / preprocessing.STDDEV_RGB
  np.testing.assert_allclose(out, expected, atol=1e-5)


def test_bfloat16_output():
  out = preprocessing.preprocess_for_eval(tf.zeros((40, 40, 3), tf.uint8), 32, "center_128", tf.bfloat16)
  assert out.dtype == tf.bfloat16


def test_unknown_normalization_and_augment_are_clear_errors():
  with pytest.raises(ValueError, match="Unknown normalization 'imagenet'"):
    preprocessing.normalize(tf.zeros((2, 2, 3)), "imagenet")
  with pytest.raises(ValueError, match="Unknown augment 'rand'"):
    preprocessing.preprocess_for_train(tf.zeros((40, 40, 3), tf.uint8), tf.constant([1, 2]), 32, "center_128",
                                       "rand")
