"""RMSProp with TF1 semantics, as the official recipe trained with.

Keras 3's RMSprop already keeps epsilon inside the square root and folds the learning rate into the
momentum buffer, like tf.compat.v1.train.RMSPropOptimizer; the one difference is the mean-square slot,
which TF1 starts at 1 and Keras at 0. Starting at 0 makes the first updates up to 1/sqrt(1 - rho) ~ 3x
larger, which the official warm-up was not tuned for.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="effnetv2_tf")
class RMSPropTF1(keras.optimizers.RMSprop):
  """keras.optimizers.RMSprop whose mean-square accumulator starts at 1 (official: rho 0.9, momentum 0.9,
  epsilon 1e-3)."""

  def __init__(self, learning_rate=0.016, rho=0.9, momentum=0.9, epsilon=1e-3, name="rmsprop_tf1", **kwargs):
    super().__init__(learning_rate=learning_rate, rho=rho, momentum=momentum, epsilon=epsilon, name=name,
                     **kwargs)

  def add_optimizer_variables(self, trainable_variables, name, initializer="zeros"):
    if name == "velocity":  # RMSprop's mean-square slot
      initializer = "ones"
    return super().add_optimizer_variables(trainable_variables, name, initializer)


def create_optimizer(name, learning_rate):
  """The optimizer of a recipe: "rmsprop" (official, TF1 semantics), "momentum" (0.9) or "adam"."""
  if name == "rmsprop":
    return RMSPropTF1(learning_rate)
  if name == "momentum":
    return keras.optimizers.SGD(learning_rate, momentum=0.9)
  if name == "adam":
    return keras.optimizers.Adam(learning_rate)
  raise ValueError(f"Unknown optimizer {name!r}; expected rmsprop, momentum or adam.")


def reset_momenta(optimizer):
  """Zeroes the momentum slots of `optimizer` (SGD's and RMSprop's; the mean squares and Adam's moments are
  statistics of the gradients and stay). Keras keeps momenta as steps already scaled by the learning rate, so a
  run resumed with a lower one would otherwise go on at the old rate for tens of steps."""
  for variable in optimizer.variables:
    if variable.path.endswith("_momentum"):
      variable.assign(ops.zeros(variable.shape, variable.dtype))
