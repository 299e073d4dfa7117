import numpy as np
import tensorflow as tf

from effnetv2_tf.data.autoaugment import POLICY_V0, autoaugment
from effnetv2_tf.data.randaugment import RANDAUGMENT_OPS, randaugment


def test_policy_v0_has_25_two_op_sub_policies_of_known_ops():
  assert len(POLICY_V0) == 25 and all(len(sub) == 2 for sub in POLICY_V0)
  assert {name for sub in POLICY_V0 for name, _, _ in sub} <= set(RANDAUGMENT_OPS)


def test_same_seed_same_output_and_seeds_vary_the_ops(flower_photos):
  image = tf.constant(flower_photos[0])
  for augment in (lambda seed: randaugment(image, 9.0, seed), lambda seed: autoaugment(image, seed)):
    np.testing.assert_array_equal(augment(tf.constant([1, 2])), augment(tf.constant([1, 2])))
    outputs = {augment(tf.constant([seed, 0])).numpy().tobytes() for seed in range(12)}
    assert len(outputs) >= 6  # different seeds pick different ops / arguments
    out = augment(tf.constant([3, 3]))
    assert out.shape == image.shape and out.dtype == tf.uint8


def test_magnitude_may_be_a_tensor_inside_a_dataset_map(flower_photos):
  magnitude = tf.constant(6.5)
  dataset = tf.data.Dataset.from_tensor_slices(np.stack(flower_photos)).enumerate().map(
      lambda index, image: randaugment(image, magnitude, tf.stack([index, index])))
  assert [image.shape for image in dataset.as_numpy_iterator()] == [(64, 64, 3)] * len(flower_photos)
