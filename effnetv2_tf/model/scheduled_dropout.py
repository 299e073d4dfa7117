"""Dropout whose rate a training schedule may change after the model is built."""

import keras


@keras.saving.register_keras_serializable(package="effnetv2_tf")
class ScheduledDropout(keras.layers.Layer):
  """Dropout (inverted: kept values scaled by 1 / (1 - rate)) with a settable `rate`.

  Keras' Dropout creates its random generator only when built with a rate > 0, so a model built at 0 could
  never drop later; this one always has it. The rate is read when the call is traced: a running tf.function
  keeps the rate it was traced with.
  """

  def __init__(self, rate, seed=None, **kwargs):
    super().__init__(**kwargs)
    self.rate = rate
    self.seed = seed
    self.seed_generator = keras.random.SeedGenerator(seed)

  @property
  def rate(self):
    return self._rate

  @rate.setter
  def rate(self, rate):
    if not 0.0 <= rate < 1.0:
      raise ValueError(f"dropout rate must be in [0, 1), got {rate}.")
    self._rate = float(rate)

  def call(self, inputs, training=None):
    if not training or self.rate == 0.0:
      return inputs
    return keras.random.dropout(inputs, self.rate, seed=self.seed_generator)

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    return {**super().get_config(), "rate": self.rate, "seed": self.seed}
