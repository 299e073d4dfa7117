"""The official weight initializers."""

import keras


def conv_kernel_initializer():
  """normal(0, sqrt(2 / fan_out)), fan_out = kh * kw * out (depthwise: kh * kw)."""
  return keras.initializers.VarianceScaling(scale=2.0, mode="fan_out", distribution="untruncated_normal")


def dense_kernel_initializer():
  """uniform(-1/sqrt(out), 1/sqrt(out)): VarianceScaling's uniform limit is sqrt(3 * scale / fan_out)."""
  return keras.initializers.VarianceScaling(scale=1.0 / 3.0, mode="fan_out", distribution="uniform")
