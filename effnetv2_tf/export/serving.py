"""The model every file format is written from: float images in [0, 1] in, float32 logits out, the model family's
normalization inside (as the SavedModels do), so that a user of ONNX or LiteRT feeds plain pixels / 255."""

import keras
import numpy as np

from effnetv2_tf.specs import MEAN_RGB, STDDEV_RGB


def _normalization_layer(normalization):
  """pixels / 255 -> the model's input range, as one Rescaling (x * scale + offset, per channel for mean_std)."""
  if normalization == "center_128":  # (255 x - 128) / 128
    return keras.layers.Rescaling(255.0 / 128.0, offset=-1.0, name="normalize")
  if normalization == "mean_std":  # (255 x - mean) / std
    std, mean = np.asarray(STDDEV_RGB, "float32"), np.asarray(MEAN_RGB, "float32")
    return keras.layers.Rescaling((255.0 / std).tolist(), offset=(-mean / std).tolist(), name="normalize")
  raise ValueError(f"Unknown normalization {normalization!r}.")


def serving_model(model, normalization):
  """`model` (logits out, float32 weights) behind its normalization: a Keras model of [N, H, W, 3] images in
  [0, 1] -> [N, classes] logits. It shares `model`'s layers, so its weights are the ones loaded there."""
  images = keras.Input((None, None, 3), name="images")
  logits = model(_normalization_layer(normalization)(images))
  served = keras.Model(images, logits, name=f"{model.name}-serving")
  served(np.zeros((1, 32, 32, 3), "float32"))  # Keras' exporters want a model that has been called
  return served
