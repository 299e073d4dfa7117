"""The exponential moving average's rule: what it averages (weights and BN statistics) and how fast, with the
official warm-up.

decay_t = min(decay, (1 + t) / (10 + t)) (tf.train.ExponentialMovingAverage with num_updates), applied
after every optimizer step to every trainable variable and every batch-norm moving statistic; eval and
export use the averages, and both checkpoint formats hold them (weights.runs reads them). In keras.ops, without
TensorFlow: both engines follow it (engines/tf/ema.py holds the TF engine's averages as variables; the JAX
engine's state carries its own as arrays).
"""

from keras import ops


def averaged_variables(model):
  """What the official code averages: trainable variables plus BN moving means and variances."""
  stats = [v for v in model.non_trainable_variables if v.path.endswith(("moving_mean", "moving_variance"))]
  return list(model.trainable_variables) + stats


def decay_at(decay, step):
  """The decay of the update after optimizer step `step` (0-based): min(decay, (1 + t) / (10 + t)). In keras.ops:
  both engines average with it."""
  step = ops.cast(step, "float32")
  return ops.minimum(ops.cast(decay, "float32"), (1.0 + step) / (10.0 + step))
