"""Variable names shared with the official automl checkpoints.

Our Keras variable paths are the official checkpoint names without the model prefix: blocks are layers
named blocks_K, and inside a block, convs and batch norms take the official creation-order names
(conv2d, conv2d_1; tpu_batch_normalization, _1, _2). Two names differ: the classifier, which
keras.applications style calls `predictions` and the official code `head/dense`, and the depthwise kernel,
which Keras 3 calls `kernel` and TF1 / tf.keras (the official code) `depthwise_kernel`.
"""

_DEPTHWISE_KERNEL = "/depthwise_conv2d/kernel"


class BlockLayerNames:
  """Hands out the official names for a block's convs and batch norms, in creation order."""

  def __init__(self):
    self._convs = 0
    self._bns = 0

  def conv(self):
    name = _numbered("conv2d", self._convs)
    self._convs += 1
    return name

  def bn(self):
    name = _numbered("tpu_batch_normalization", self._bns)
    self._bns += 1
    return name


def _numbered(base, index):
  return base if index == 0 else f"{base}_{index}"


def official_variable_name(model_name, variable_path):
  """Maps one of our variable paths to its official checkpoint name.

  >>> official_variable_name("efficientnetv2-s", "blocks_12/tpu_batch_normalization_1/gamma")
  'efficientnetv2-s/blocks_12/tpu_batch_normalization_1/gamma'
  >>> official_variable_name("efficientnetv2-s", "predictions/kernel")
  'efficientnetv2-s/head/dense/kernel'
  >>> official_variable_name("efficientnetv2-s", "blocks_9/depthwise_conv2d/kernel")
  'efficientnetv2-s/blocks_9/depthwise_conv2d/depthwise_kernel'
  """
  if variable_path.startswith("predictions/"):
    variable_path = "head/dense/" + variable_path[len("predictions/"):]
  if variable_path.endswith(_DEPTHWISE_KERNEL):
    variable_path = variable_path[:-len("kernel")] + "depthwise_kernel"
  return f"{model_name}/{variable_path}"
