"""The two inverted-residual blocks of EfficientNet: MBConv and Fused-MBConv.

MBConv:       [1x1 expand + BN + act] -> kxk depthwise (stride) + BN + act -> SE -> 1x1 project + BN
Fused-MBConv: kxk expand (stride) + BN + act -> [SE] -> 1x1 project + BN;  with expand_ratio 1 the
              single kxk conv (stride) + BN + act is the whole block.
Both add the input back through stochastic depth when stride is 1 and the channel count is unchanged;
with zero_init_residual the last BN of such a block starts at scale 0, so that the block starts as the identity.

Sub-layers are created in the official order so that their names (official_names.BlockLayerNames) match
the official checkpoints; the Python attributes say what each one is.
"""

import keras

from effnetv2_tf.model import initializers
from effnetv2_tf.model.official_names import BlockLayerNames
from effnetv2_tf.model.squeeze_excite import SqueezeExcite
from effnetv2_tf.model.stochastic_depth import StochasticDepth


class _InvertedResidual(keras.layers.Layer):
  """What the two blocks share: config, BN/conv factories, the residual and get_config."""

  def __init__(self, input_filters, output_filters, kernel_size=3, strides=1, expand_ratio=1, se_ratio=None,
               survival_prob=1.0, activation="silu", bn_momentum=0.9, bn_epsilon=1e-3, synchronized_bn=False,
               zero_init_residual=False, **kwargs):
    super().__init__(**kwargs)
    self.input_filters = input_filters
    self.output_filters = output_filters
    self.kernel_size = kernel_size
    self.strides = strides
    self.expand_ratio = expand_ratio
    self.se_ratio = se_ratio
    self.survival_prob = survival_prob
    self.activation = activation
    self.bn_momentum = bn_momentum
    self.bn_epsilon = bn_epsilon
    self.synchronized_bn = synchronized_bn
    self.zero_init_residual = zero_init_residual
    self.act = keras.activations.get(activation)
    self.has_residual = strides == 1 and input_filters == output_filters
    self._names = BlockLayerNames()

  @property
  def expanded_filters(self):
    return self.input_filters * self.expand_ratio

  def _conv(self, filters, kernel_size, strides=1):
    return keras.layers.Conv2D(filters, kernel_size, strides, padding="same", use_bias=False,
                               kernel_initializer=initializers.conv_kernel_initializer(),
                               name=self._names.conv())

  def _bn(self, last=False):
    """`last`: the BN ending the residual branch."""
    zero = last and self.has_residual and self.zero_init_residual
    return keras.layers.BatchNormalization(momentum=self.bn_momentum, epsilon=self.bn_epsilon,
                                           gamma_initializer="zeros" if zero else "ones",
                                           synchronized=self.synchronized_bn, name=self._names.bn())

  def _squeeze_excite(self):
    if not self.se_ratio or not 0 < self.se_ratio <= 1:
      return None
    reduced = max(1, int(self.input_filters * self.se_ratio))
    return SqueezeExcite(reduced, self.activation, name="se")

  def _stochastic_depth(self):
    if not self.has_residual or self.survival_prob == 1.0:
      return None
    return StochasticDepth(self.survival_prob, name="stochastic_depth")

  def _add_residual(self, branch, inputs, training):
    if not self.has_residual:
      return branch
    if self.drop_path is not None:
      branch = self.drop_path(branch, training=training)
    return branch + inputs

  def build(self, input_shape):
    if input_shape[-1] != self.input_filters:
      raise ValueError(f"Block {self.name} expects {self.input_filters} input channels, got {input_shape[-1]}.")
    shape = input_shape
    for layer in self._layers_in_order():
      layer.build(shape)
      shape = layer.compute_output_shape(shape)

  def compute_output_shape(self, input_shape):
    shape = input_shape
    for layer in self._layers_in_order():
      shape = layer.compute_output_shape(shape)
    return shape

  def get_config(self):
    return {**super().get_config(), "input_filters": self.input_filters, "output_filters": self.output_filters,
            "kernel_size": self.kernel_size, "strides": self.strides, "expand_ratio": self.expand_ratio,
            "se_ratio": self.se_ratio, "survival_prob": self.survival_prob, "activation": self.activation,
            "bn_momentum": self.bn_momentum, "bn_epsilon": self.bn_epsilon, "synchronized_bn": self.synchronized_bn,
            "zero_init_residual": self.zero_init_residual}


@keras.saving.register_keras_serializable(package="effnetv2_tf")
class MBConv(_InvertedResidual):
  """Mobile inverted bottleneck with a depthwise kxk conv and squeeze-excite."""

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    if self.expand_ratio != 1:
      self.expand_conv = self._conv(self.expanded_filters, 1)
      self.expand_bn = self._bn()
    else:
      self.expand_conv = self.expand_bn = None
    self.depthwise_conv = keras.layers.DepthwiseConv2D(
        self.kernel_size, self.strides, padding="same", use_bias=False,
        depthwise_initializer=initializers.conv_kernel_initializer(), name="depthwise_conv2d")
    self.depthwise_bn = self._bn()
    self.se = self._squeeze_excite()
    self.project_conv = self._conv(self.output_filters, 1)
    self.project_bn = self._bn(last=True)
    self.drop_path = self._stochastic_depth()

  def _layers_in_order(self):
    layers = [self.expand_conv, self.expand_bn, self.depthwise_conv, self.depthwise_bn, self.se,
              self.project_conv, self.project_bn]
    return [layer for layer in layers if layer is not None]

  def call(self, inputs, training=None):
    x = inputs
    if self.expand_conv is not None:
      x = self.act(self.expand_bn(self.expand_conv(x), training=training))
    x = self.act(self.depthwise_bn(self.depthwise_conv(x), training=training))
    if self.se is not None:
      x = self.se(x)
    x = self.project_bn(self.project_conv(x), training=training)
    return self._add_residual(x, inputs, training)


@keras.saving.register_keras_serializable(package="effnetv2_tf")
class FusedMBConv(_InvertedResidual):
  """MBConv with the 1x1 expansion and depthwise conv fused into one regular kxk conv."""

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    if self.expand_ratio != 1:
      self.expand_conv = self._conv(self.expanded_filters, self.kernel_size, self.strides)
      self.expand_bn = self._bn()
      self.se = self._squeeze_excite()
      self.project_conv = self._conv(self.output_filters, 1)
    else:
      # Without expansion the single kxk conv does the striding and keeps its activation.
      self.expand_conv = self.expand_bn = None
      self.se = self._squeeze_excite()
      self.project_conv = self._conv(self.output_filters, self.kernel_size, self.strides)
    self.project_bn = self._bn(last=True)
    self.drop_path = self._stochastic_depth()

  def _layers_in_order(self):
    layers = [self.expand_conv, self.expand_bn, self.se, self.project_conv, self.project_bn]
    return [layer for layer in layers if layer is not None]

  def call(self, inputs, training=None):
    x = inputs
    if self.expand_conv is not None:
      x = self.act(self.expand_bn(self.expand_conv(x), training=training))
    if self.se is not None:
      x = self.se(x)
    x = self.project_bn(self.project_conv(x), training=training)
    if self.expand_conv is None:
      x = self.act(x)
    return self._add_residual(x, inputs, training)
