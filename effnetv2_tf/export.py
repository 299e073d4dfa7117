"""SavedModel export in the TF-Hub layout: EXPORT_DIR/classification and EXPORT_DIR/feature-vector,
and optionally EXPORT_DIR/classification.tflite.

Both take float images in [0, 1] of any height, width and batch ([None, None, None, 3]) and apply the
model family's normalization inside, so users never need this package to run them. The classification
model also serves encoded JPEG/PNG bytes (`serving_bytes`): the official eval crop and resize, then the
top-k classes and scores. Load with tf.saved_model.load, or wrap with keras.layers.TFSMLayer to fine-tune.
"""

import os

import keras
import tensorflow as tf

from effnetv2_tf.data import preprocessing

FLAVOURS = ("classification", "feature-vector")
TFLITE_MODES = ("float32", "dynamic-int8")


class ExportError(ValueError):
  """The export cannot be written as asked (e.g. the directory is not empty)."""


def _normalize_unit_images(images, normalization):
  return preprocessing.normalize(tf.cast(images, tf.float32) * 255.0, normalization)


class _Classifier(tf.Module):
  def __init__(self, model, normalization, image_size, top_k, probabilities):
    super().__init__()
    self.model = model
    self.normalization = normalization
    self.image_size = image_size
    self.top_k = top_k
    self.probabilities = probabilities

  @tf.function(input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32, name="images")])
  def __call__(self, images):
    logits = tf.cast(self.model(_normalize_unit_images(images, self.normalization), training=False), tf.float32)
    return tf.nn.softmax(logits) if self.probabilities else logits

  @tf.function(input_signature=[tf.TensorSpec((None,), tf.string, name="image_bytes")])
  def serve_bytes(self, image_bytes):
    def decode(data):
      return preprocessing.preprocess_for_eval(data, self.image_size, self.normalization)
    images = tf.map_fn(decode, image_bytes, fn_output_signature=tf.TensorSpec(
        (self.image_size, self.image_size, 3), tf.float32))
    probabilities = tf.nn.softmax(tf.cast(self.model(images, training=False), tf.float32))
    scores, classes = tf.math.top_k(probabilities, k=min(self.top_k, probabilities.shape[-1]))
    return {"classes": classes, "scores": scores}


class _FeatureVector(tf.Module):
  def __init__(self, model, normalization):
    super().__init__()
    self.model = model
    self.normalization = normalization

  @tf.function(input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32, name="images")])
  def __call__(self, images):
    return tf.cast(self.model(_normalize_unit_images(images, self.normalization), training=False), tf.float32)


def _prepare_dir(path, overwrite):
  if tf.io.gfile.exists(path) and tf.io.gfile.listdir(path):
    if not overwrite:
      raise ExportError(f"Export directory {path} exists and is not empty: pass --overwrite (or another dir).")
    tf.io.gfile.rmtree(path)


def export_saved_models(model, spec, export_dir, image_size=None, top_k=5, probabilities=False, overwrite=False):
  """Writes EXPORT_DIR/classification and EXPORT_DIR/feature-vector for a classifier `model`.

  Args:
    model: one of our models with include_top and logits (classifier_activation=None), holding the
      weights to export (e.g. inside ExponentialMovingAverage.averaged_weights()).
    spec: its ModelSpec (normalization, eval size).
    export_dir: the parent folder (local or gs://).
    image_size: the serving_bytes input size; defaults to the spec's eval size.
    top_k: classes returned by serving_bytes.
    probabilities: the classification signature returns softmax instead of logits.
    overwrite: replace a non-empty export_dir.

  Returns:
    {flavour: path}.
  """
  _prepare_dir(export_dir, overwrite)
  image_size = image_size or spec.eval_size
  # A feature model sharing the classifier's layers (and so its weights): pooled features before dropout.
  features = keras.Model(model.inputs, model.get_layer("avg_pool").output, name=f"{model.name}-features")
  paths = {flavour: os.path.join(export_dir, flavour) for flavour in FLAVOURS}
  classifier = _Classifier(model, spec.normalization, image_size, top_k, probabilities)
  tf.saved_model.save(classifier, paths["classification"], signatures={
      "serving_default": classifier.__call__, "serving_bytes": classifier.serve_bytes})
  feature_vector = _FeatureVector(features, spec.normalization)
  tf.saved_model.save(feature_vector, paths["feature-vector"], signatures={"serving_default": feature_vector.__call__})
  return paths


def export_tflite(classification_dir, output_path, image_size, mode="float32"):
  """Converts an exported classification model to TFLite at a fixed [1, image_size, image_size, 3] input.

  Args:
    classification_dir: EXPORT_DIR/classification.
    output_path: the .tflite file to write.
    image_size: the input side (TFLite models take one fixed size).
    mode: "float32", or "dynamic-int8" (weights stored as int8, about 4x smaller).
  """
  if mode not in TFLITE_MODES:
    raise ExportError(f"Unknown TFLite mode {mode!r}; expected one of {TFLITE_MODES}.")
  module = tf.saved_model.load(classification_dir)

  # The saved signature takes any size; TFLite wants static shapes, so pin them in a wrapper.
  @tf.function(input_signature=[tf.TensorSpec((1, image_size, image_size, 3), tf.float32)])
  def fixed_size(images):
    return module(images)

  converter = tf.lite.TFLiteConverter.from_concrete_functions([fixed_size.get_concrete_function()], module)
  if mode == "dynamic-int8":
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
  with tf.io.gfile.GFile(output_path, "wb") as f:
    f.write(converter.convert())
  return output_path
