"""The TF engine's EMA: shadow variables beside the weights and BN statistics, moved after each step by the rule
in weights/ema.py; tf.train.Checkpoint saves them under ema/ (ema/shadows/I, and ema/_variables/I for what they
average).
"""

import contextlib

import tensorflow as tf

from effnetv2_tf.weights.ema import decay_at


class ExponentialMovingAverage(tf.Module):
  """Shadow copies of `variables`; create it inside the strategy scope that owns them."""

  def __init__(self, variables, decay):
    super().__init__(name="ema")
    # A variable decay (a run fitted to a time budget sets it after tracing) is read at each update and
    # belongs to the run's config, not to the checkpoint: held by a function, which tf.Module does not track.
    self._decay = lambda: decay
    self._variables = list(variables)
    # ONLY_FIRST_REPLICA: every replica computes the same update from synchronized weights.
    self.shadows = [tf.Variable(tf.convert_to_tensor(v), trainable=False, name=f"shadow_{index}",
                                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
                    for index, v in enumerate(self._variables)]

  def reset(self):
    """Shadows := current values (after the weights were replaced, e.g. by a warm start)."""
    for shadow, variable in zip(self.shadows, self._variables):
      shadow.assign(tf.cast(tf.convert_to_tensor(variable), shadow.dtype))

  def update(self, step):
    """Moves every shadow towards its variable; `step` is the optimizer step before this update."""
    decay = decay_at(self._decay(), step)
    for shadow, variable in zip(self.shadows, self._variables):
      value = tf.cast(tf.convert_to_tensor(variable), shadow.dtype)
      shadow.assign(decay * shadow + (1.0 - decay) * value)

  @contextlib.contextmanager
  def averaged_weights(self):
    """Within the block the model holds the averages; its own values come back afterwards."""
    backup = [tf.convert_to_tensor(v) for v in self._variables]
    for variable, shadow in zip(self._variables, self.shadows):
      variable.assign(tf.convert_to_tensor(shadow))
    try:
      yield
    finally:
      for variable, value in zip(self._variables, backup):
        variable.assign(value)
