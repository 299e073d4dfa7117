"""Squeeze-and-excitation: channel gates from the globally pooled feature map."""

import keras

from effnetv2_tf.model import initializers


@keras.saving.register_keras_serializable(package="effnetv2_tf")
class SqueezeExcite(keras.layers.Layer):
  """mean over H, W -> 1x1 conv to `reduced_filters` -> act -> 1x1 conv back -> sigmoid -> scale.

  `reduced_filters` is computed by the block from its INPUT channels (official rule), not from the
  expanded channels this layer sees.
  """

  def __init__(self, reduced_filters, activation="silu", **kwargs):
    super().__init__(**kwargs)
    self.reduced_filters = reduced_filters
    self.activation = activation
    self.act = keras.activations.get(activation)
    self.reduce_conv = keras.layers.Conv2D(reduced_filters, 1, padding="same", use_bias=True,
                                           kernel_initializer=initializers.conv_kernel_initializer(),
                                           name="conv2d")
    self.expand_conv = None  # its width is the input's channel count, known in build()

  def build(self, input_shape):
    channels = input_shape[-1]
    self.expand_conv = keras.layers.Conv2D(channels, 1, padding="same", use_bias=True,
                                           kernel_initializer=initializers.conv_kernel_initializer(),
                                           name="conv2d_1")
    pooled_shape = (input_shape[0], 1, 1, channels)
    self.reduce_conv.build(pooled_shape)
    self.expand_conv.build(self.reduce_conv.compute_output_shape(pooled_shape))

  def call(self, inputs):
    pooled = keras.ops.mean(inputs, axis=(1, 2), keepdims=True)
    gate = keras.ops.sigmoid(self.expand_conv(self.act(self.reduce_conv(pooled))))
    return inputs * gate

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    return {**super().get_config(), "reduced_filters": self.reduced_filters, "activation": self.activation}
