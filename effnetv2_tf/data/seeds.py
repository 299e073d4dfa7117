"""The seeds of a run's random data streams, each derived from the run's seed (train.seed) by derive_seed(),
so that a resumed run draws the same numbers and no two streams share a seed. (The model's dropout and
stochastic-depth masks come from Keras' global seed, also train.seed, and their states are checkpointed.)
"""

import tensorflow as tf

# The streams below a seed; each is followed by its index in the path.
STAGE = 1  # the data of one training stage (its index)
EPOCH = 2  # the example order of one epoch of a stage (the epoch)
PIPELINE = 3  # the per-example crops, flips and augmentation of one input pipeline (its id)
MIXING = 4  # mixup and cutmix of that pipeline's batches (its id)
MASKS = 5  # progressive.fit's dropout masks: the epoch, then a generator's index (-1, then the step: torch's global one)
_MULTIPLIER = 1_000_003  # a prime above every index used, so that paths of one length give distinct seeds


def derive_seed(seed, *path):
  """The int64 seed of the stream at `path` below `seed`. Parts are Python ints or int64 scalar tensors (an
  epoch inside tf.data); from the first tensor part on the result is a tensor (wrapping around in int64)."""
  for part in path:
    if isinstance(seed, int) and isinstance(part, int):
      seed = (seed * _MULTIPLIER + part) % 2**63
    else:
      seed = tf.cast(seed, tf.int64) * _MULTIPLIER + tf.cast(part, tf.int64)
  return seed
