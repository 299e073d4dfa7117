"""What a batch scores: top-1 and top-5 hits over its real examples, in keras.ops (both engines count with it)."""

from keras import ops


def hits(labels, logits, weights):
  """(top-1 hits, top-5 hits, examples) of a batch of one-hot `labels` and float32 `logits`; padding has weight
  0."""
  targets = ops.argmax(labels, -1)
  top1 = ops.sum(weights * ops.cast(ops.in_top_k(targets, logits, 1), "float32"))
  top5 = ops.sum(weights * ops.cast(ops.in_top_k(targets, logits, min(5, logits.shape[-1])), "float32"))
  return top1, top5, ops.sum(weights)
