"""The training objective: cross-entropy with label smoothing plus the official L2 weight decay.

In keras.ops, so that both engines train the same objective (under TensorFlow the ops are the ones the TF
engine always ran: softmax / sigmoid cross-entropy with logits, bit for bit).
"""

import re

from keras import ops

WEIGHT_DECAY_EXCLUDE = re.compile(r".*(bias|gamma|beta).*")


def classification_loss(labels, logits, label_smoothing=0.0, loss_type="softmax"):
  """Per-example loss of (soft) one-hot labels against float32 logits.

  Smoothing is the official y * (1 - ls) + ls / K. "sigmoid" sums the per-class binary cross-entropies
  (multi-label ImageNet-21k); "softmax" is categorical cross-entropy.
  """
  logits = ops.cast(logits, "float32")
  labels = ops.cast(labels, "float32") * (1.0 - label_smoothing) + label_smoothing / labels.shape[-1]
  if loss_type == "softmax":
    return ops.categorical_crossentropy(labels, logits, from_logits=True)
  if loss_type == "sigmoid":
    return ops.sum(ops.binary_crossentropy(labels, logits, from_logits=True), axis=-1)
  raise ValueError(f"Unknown loss type {loss_type!r}; expected softmax or sigmoid.")


def decayed_variables(variables):
  """The variables the official weight decay applies to: all but bias, gamma and beta (kernels)."""
  return [v for v in variables if not WEIGHT_DECAY_EXCLUDE.match(v.path)]


def weight_decay_loss(variables, weight_decay):
  """weight_decay * sum(0.5 * ||w||^2) over `variables` (already filtered by decayed_variables)."""
  if not weight_decay or not variables:
    return ops.convert_to_tensor(0.0)
  return weight_decay * sum(0.5 * ops.sum(ops.square(ops.cast(v, "float32"))) for v in variables)
