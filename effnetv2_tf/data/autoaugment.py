"""AutoAugment policy v0, the ImageNet policy of the official EfficientNet (V1 and V2-B0..B3) recipe.

One of 25 sub-policies is chosen uniformly per image; each of its two ops runs with its own probability
at its own level (0..10). AutoAugment uses larger translate (250 px) and cutout (100 px) constants than
RandAugment.
"""

import tensorflow as tf

from effnetv2_tf.data.randaugment import MAX_LEVEL, op_table

POLICY_V0 = (
    (("Equalize", 0.8, 1), ("ShearY", 0.8, 4)), (("Color", 0.4, 9), ("Equalize", 0.6, 3)),
    (("Color", 0.4, 1), ("Rotate", 0.6, 8)), (("Solarize", 0.8, 3), ("Equalize", 0.4, 7)),
    (("Solarize", 0.4, 2), ("Solarize", 0.6, 2)), (("Color", 0.2, 0), ("Equalize", 0.8, 8)),
    (("Equalize", 0.4, 8), ("SolarizeAdd", 0.8, 3)), (("ShearX", 0.2, 9), ("Rotate", 0.6, 8)),
    (("Color", 0.6, 1), ("Equalize", 1.0, 2)), (("Invert", 0.4, 9), ("Rotate", 0.6, 0)),
    (("Equalize", 1.0, 9), ("ShearY", 0.6, 3)), (("Color", 0.4, 7), ("Equalize", 0.6, 0)),
    (("Posterize", 0.4, 6), ("AutoContrast", 0.4, 7)), (("Solarize", 0.6, 8), ("Color", 0.6, 9)),
    (("Solarize", 0.2, 4), ("Rotate", 0.8, 9)), (("Rotate", 1.0, 7), ("TranslateY", 0.8, 9)),
    (("ShearX", 0.0, 0), ("Solarize", 0.8, 4)), (("ShearY", 0.8, 0), ("Color", 0.6, 4)),
    (("Color", 1.0, 0), ("Rotate", 0.6, 2)), (("Equalize", 0.8, 4), ("Equalize", 0.0, 8)),
    (("Equalize", 1.0, 4), ("AutoContrast", 0.6, 2)), (("ShearY", 0.4, 7), ("SolarizeAdd", 0.6, 7)),
    (("Posterize", 0.8, 2), ("Solarize", 0.6, 10)), (("Solarize", 0.6, 8), ("Equalize", 0.6, 1)),
    (("Color", 0.8, 6), ("Rotate", 0.4, 5)),
)
AUTOAUGMENT_OPS = op_table({"translate": 250.0, "cutout": 100.0})


def _sub_policy(image, sub_policy, seed):
  seeds = tf.random.experimental.stateless_split(seed, num=2 * len(sub_policy))
  for index, (name, probability, level) in enumerate(sub_policy):
    apply = tf.random.stateless_uniform((), seeds[2 * index]) < probability
    op_seed = seeds[2 * index + 1]
    image = tf.cond(apply, lambda: AUTOAUGMENT_OPS[name](image, level / MAX_LEVEL, op_seed), lambda: image)
  return image


def autoaugment(image, seed, policy=POLICY_V0):
  """Applies one uniformly chosen sub-policy of `policy` to a uint8 HWC image (stateless `seed` [2])."""
  choice_seed, policy_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
  choice = tf.random.stateless_uniform((), choice_seed, 0, len(policy), dtype=tf.int32)
  image = tf.switch_case(choice, [lambda sub=sub: _sub_policy(image, sub, policy_seed) for sub in policy])
  image.set_shape((None, None, 3))
  return image
