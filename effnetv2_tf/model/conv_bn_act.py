"""Conv -> batch norm -> activation: the stem (3x3, stride 2) and the head (1x1) of the network."""

import keras

from effnetv2_tf.model import initializers


@keras.saving.register_keras_serializable(package="effnetv2_tf")
class ConvBNAct(keras.layers.Layer):
  """A bias-free 'same'-padded conv, batch norm and activation, named as in the official checkpoints."""

  def __init__(self, filters, kernel_size, strides=1, activation="silu", bn_momentum=0.9, bn_epsilon=1e-3,
               synchronized_bn=False, **kwargs):
    super().__init__(**kwargs)
    self.filters = filters
    self.kernel_size = kernel_size
    self.strides = strides
    self.activation = activation
    self.bn_momentum = bn_momentum
    self.bn_epsilon = bn_epsilon
    self.synchronized_bn = synchronized_bn
    self.conv = keras.layers.Conv2D(filters, kernel_size, strides, padding="same", use_bias=False,
                                    kernel_initializer=initializers.conv_kernel_initializer(), name="conv2d")
    self.bn = keras.layers.BatchNormalization(momentum=bn_momentum, epsilon=bn_epsilon,
                                              synchronized=synchronized_bn, name="tpu_batch_normalization")
    self.act = keras.activations.get(activation)

  def build(self, input_shape):
    self.conv.build(input_shape)
    self.bn.build(self.conv.compute_output_shape(input_shape))

  def call(self, inputs, training=None):
    return self.act(self.bn(self.conv(inputs), training=training))

  def compute_output_shape(self, input_shape):
    return self.conv.compute_output_shape(input_shape)

  def get_config(self):
    return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
            "strides": self.strides, "activation": self.activation, "bn_momentum": self.bn_momentum,
            "bn_epsilon": self.bn_epsilon, "synchronized_bn": self.synchronized_bn}
