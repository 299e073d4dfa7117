"""RandAugment (Cubuk et al. 2020) with the official EfficientNet op list and level-to-argument mapping.

Each of `num_layers` layers picks one of 16 ops uniformly and always applies it at the shared magnitude m
(level = m / 10, m may be fractional and grows per progressive-learning stage). Official mapping quirks
kept on purpose: Posterize keeps int(4 * level) bits and Solarize inverts at or above int(256 * level), so
both are strongest at small m and Solarize is a no-op from m = 10; the enhance ops use factor
1.8 * level + 0.1, which is the identity at m = 5.

Randomness is stateless: the same image and seed give the same output in any process.
"""

import tensorflow as tf

from effnetv2_tf.data import augment_ops as ops

MAX_LEVEL = 10.0
RANDAUGMENT_CONSTANTS = {"translate": 100.0, "cutout": 40.0}


def _random_sign(value, seed):
  return tf.where(tf.random.stateless_uniform((), seed) < 0.5, -value, value)


def _cutout(image, pad_size, seed):
  shape = tf.shape(image)
  center = tf.random.stateless_uniform((2,), seed, minval=0, maxval=tf.int32.max, dtype=tf.int32) % shape[:2]
  return ops.cutout(image, pad_size, center[0], center[1])


def op_table(constants):
  """{name: fn(image, level, seed)} for the 16 ops; `constants` sets translate and cutout sizes."""
  translate, cutout = constants["translate"], constants["cutout"]
  as_int = lambda value: tf.cast(value, tf.int32)  # truncation, like the official int()
  return {
      "AutoContrast": lambda image, level, seed: ops.autocontrast(image),
      "Equalize": lambda image, level, seed: ops.equalize(image),
      "Invert": lambda image, level, seed: ops.invert(image),
      "Rotate": lambda image, level, seed: ops.rotate(image, _random_sign(level * 30.0, seed)),
      "Posterize": lambda image, level, seed: ops.posterize(image, as_int(level * 4.0)),
      "Solarize": lambda image, level, seed: ops.solarize(image, as_int(level * 256.0)),
      "Color": lambda image, level, seed: ops.color(image, level * 1.8 + 0.1),
      "Contrast": lambda image, level, seed: ops.contrast(image, level * 1.8 + 0.1),
      "Brightness": lambda image, level, seed: ops.brightness(image, level * 1.8 + 0.1),
      "Sharpness": lambda image, level, seed: ops.sharpness(image, level * 1.8 + 0.1),
      "ShearX": lambda image, level, seed: ops.shear_x(image, _random_sign(level * 0.3, seed)),
      "ShearY": lambda image, level, seed: ops.shear_y(image, _random_sign(level * 0.3, seed)),
      "TranslateX": lambda image, level, seed: ops.translate_x(image, _random_sign(level * translate, seed)),
      "TranslateY": lambda image, level, seed: ops.translate_y(image, _random_sign(level * translate, seed)),
      "Cutout": lambda image, level, seed: _cutout(image, as_int(level * cutout), seed),
      "SolarizeAdd": lambda image, level, seed: ops.solarize_add(image, as_int(level * 110.0)),
  }


RANDAUGMENT_OPS = op_table(RANDAUGMENT_CONSTANTS)


def apply_op(image, name, magnitude, seed, table=RANDAUGMENT_OPS):
  """Applies one named op at magnitude m (0..10 and beyond) to a uint8 image."""
  level = tf.cast(magnitude, tf.float32) / MAX_LEVEL
  return table[name](image, level, seed)


def randaugment(image, magnitude, seed, num_layers=2):
  """Applies `num_layers` uniformly chosen ops at `magnitude` to one uint8 HWC image.

  Args:
    image: uint8 [H, W, 3].
    magnitude: float (Python or scalar tensor), the official m; 0 makes every op at its weakest.
    seed: int32/int64 [2] stateless seed.
    num_layers: ops applied in sequence (official: 2).
  """
  level = tf.cast(magnitude, tf.float32) / MAX_LEVEL
  ops_list = list(RANDAUGMENT_OPS.values())
  seeds = tf.random.experimental.stateless_split(seed, num=2 * num_layers)
  for layer in range(num_layers):
    choice = tf.random.stateless_uniform((), seeds[2 * layer], 0, len(ops_list), dtype=tf.int32)
    op_seed = seeds[2 * layer + 1]
    image = tf.switch_case(choice, [lambda op=op: op(image, level, op_seed) for op in ops_list])
    image.set_shape((None, None, 3))
  return image
