"""The training objective: cross-entropy with label smoothing plus the official L2 weight decay."""

import re

import tensorflow as tf

WEIGHT_DECAY_EXCLUDE = re.compile(r".*(bias|gamma|beta).*")


def classification_loss(labels, logits, label_smoothing=0.0, loss_type="softmax"):
  """Per-example loss of (soft) one-hot labels against float32 logits.

  Smoothing is the official y * (1 - ls) + ls / K. "sigmoid" sums the per-class binary cross-entropies
  (multi-label ImageNet-21k); "softmax" is categorical cross-entropy.
  """
  logits = tf.cast(logits, tf.float32)
  num_classes = tf.cast(tf.shape(labels)[-1], tf.float32)
  labels = labels * (1.0 - label_smoothing) + label_smoothing / num_classes
  if loss_type == "softmax":
    return tf.nn.softmax_cross_entropy_with_logits(labels, logits)
  if loss_type == "sigmoid":
    return tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels, logits), axis=-1)
  raise ValueError(f"Unknown loss type {loss_type!r}; expected softmax or sigmoid.")


def decayed_variables(variables):
  """The variables the official weight decay applies to: all but bias, gamma and beta (kernels)."""
  return [v for v in variables if not WEIGHT_DECAY_EXCLUDE.match(v.path)]


def weight_decay_loss(variables, weight_decay):
  """weight_decay * sum(0.5 * ||w||^2) over `variables` (already filtered by decayed_variables)."""
  if not weight_decay or not variables:
    return tf.constant(0.0)
  return weight_decay * tf.add_n([tf.nn.l2_loss(tf.cast(v, tf.float32)) for v in variables])
