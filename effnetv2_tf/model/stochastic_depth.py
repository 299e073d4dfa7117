"""Stochastic depth (drop-path): drops a residual branch per sample while training."""

import keras


@keras.saving.register_keras_serializable(package="effnetv2_tf")
class StochasticDepth(keras.layers.Layer):
  """Keeps each sample's branch with probability `survival_prob` and rescales kept ones by 1/survival_prob.

  Identity at inference, so the expected output is the same in both modes.
  """

  def __init__(self, survival_prob, seed=None, **kwargs):
    super().__init__(**kwargs)
    if not 0.0 < survival_prob <= 1.0:
      raise ValueError(f"survival_prob must be in (0, 1], got {survival_prob}.")
    self.survival_prob = survival_prob
    self.seed = seed
    self.seed_generator = keras.random.SeedGenerator(seed)

  def call(self, inputs, training=None):
    if not training or self.survival_prob == 1.0:
      return inputs
    batch = keras.ops.shape(inputs)[0]
    noise_shape = (batch,) + (1,) * (len(inputs.shape) - 1)
    uniform = keras.random.uniform(noise_shape, seed=self.seed_generator, dtype=inputs.dtype)
    keep = keras.ops.floor(self.survival_prob + uniform)
    return inputs / self.survival_prob * keep

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    return {**super().get_config(), "survival_prob": self.survival_prob, "seed": self.seed}
