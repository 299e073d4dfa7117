"""The TF-Hub layout: EXPORT_DIR/classification and EXPORT_DIR/feature-vector, TensorFlow SavedModels.

Both take float images in [0, 1] of any height, width and batch ([None, None, None, 3]) and apply the model
family's normalization inside, so users never need this package to run them. Signatures and their named outputs:
  classification  serving_default(images) -> logits, probabilities
                  serving_bytes(image_bytes) -> classes, scores (top-k), class_names (when known)
  feature-vector  serving_default(images) -> features
Calling a loaded model directly (TF-Hub style) gives the logits (or probabilities) and the features.
serving_bytes decodes encoded JPEG/PNG bytes with the official eval crop and resize at the eval size. Load
with tf.saved_model.load, or wrap with keras.layers.TFSMLayer to fine-tune. The class names, when known,
also travel with the classification model as its asset labels.txt.
"""

import os
import tempfile

from effnetv2_tf.quiet_start import import_tensorflow

tf = import_tensorflow()  # first: without TensorFlow's start-up banner
import keras  # noqa: E402

from effnetv2_tf.data import preprocessing  # noqa: E402
from effnetv2_tf.export.formats import FLAVOURS  # noqa: E402
from effnetv2_tf.labels import write_labels  # noqa: E402

LABELS_ASSET = "labels.txt"


def _normalize_unit_images(images, normalization):
  return preprocessing.normalize(tf.cast(images, tf.float32) * 255.0, normalization)


_IMAGES = tf.TensorSpec((None, None, None, 3), tf.float32, name="images")


class _Classifier(tf.Module):
  def __init__(self, model, normalization, image_size, top_k, probabilities, labels=None, labels_file=None):
    super().__init__()
    if labels_file:
      self.labels = tf.saved_model.Asset(labels_file)  # copied to assets/labels.txt
    self.class_names = tf.constant(labels) if labels else None
    self.model = model
    self.normalization = normalization
    self.image_size = image_size
    self.top_k = top_k
    self.probabilities = probabilities

  def _logits(self, images):
    return tf.cast(self.model(_normalize_unit_images(images, self.normalization), training=False), tf.float32)

  @tf.function(input_signature=[_IMAGES])
  def __call__(self, images):
    logits = self._logits(images)
    return tf.nn.softmax(logits) if self.probabilities else logits

  @tf.function(input_signature=[_IMAGES])
  def serve(self, images):
    logits = self._logits(images)
    return {"logits": logits, "probabilities": tf.nn.softmax(logits)}

  @tf.function(input_signature=[tf.TensorSpec((None,), tf.string, name="image_bytes")])
  def serve_bytes(self, image_bytes):
    def decode(data):
      return preprocessing.preprocess_for_eval(data, self.image_size, self.normalization)
    images = tf.map_fn(decode, image_bytes, fn_output_signature=tf.TensorSpec(
        (self.image_size, self.image_size, 3), tf.float32))
    probabilities = tf.nn.softmax(tf.cast(self.model(images, training=False), tf.float32))
    scores, classes = tf.math.top_k(probabilities, k=min(self.top_k, probabilities.shape[-1]))
    outputs = {"classes": classes, "scores": scores}
    if self.class_names is not None:
      outputs["class_names"] = tf.gather(self.class_names, classes)
    return outputs


class _FeatureVector(tf.Module):
  def __init__(self, model, normalization):
    super().__init__()
    self.model = model
    self.normalization = normalization

  @tf.function(input_signature=[_IMAGES])
  def __call__(self, images):
    return tf.cast(self.model(_normalize_unit_images(images, self.normalization), training=False), tf.float32)

  @tf.function(input_signature=[_IMAGES])
  def serve(self, images):
    return {"features": self(images)}


def export_saved_models(model, spec, export_dir, image_size=None, top_k=5, probabilities=False, labels=None):
  """Writes EXPORT_DIR/classification and EXPORT_DIR/feature-vector for a classifier `model` (export_dir ready:
  effnetv2_tf.export.write prepares it).

  Args:
    model: one of our models with include_top and logits (classifier_activation=None), holding the
      weights to export (e.g. inside ExponentialMovingAverage.averaged_weights()).
    spec: its ModelSpec (normalization, eval size).
    export_dir: the parent folder (local or gs://).
    image_size: the serving_bytes input size; defaults to the spec's eval size.
    top_k: classes returned by serving_bytes.
    probabilities: calling the loaded classification model returns softmax instead of logits (its
      serving_default signature always has both).
    labels: class names by index, saved as classification/assets/labels.txt (predict reads them).

  Returns:
    {flavour: path}.
  """
  image_size = image_size or spec.eval_size
  # A feature model sharing the classifier's layers (and so its weights): pooled features before dropout.
  features = keras.Model(model.inputs, model.get_layer("avg_pool").output, name=f"{model.name}-features")
  paths = {flavour: os.path.join(export_dir, flavour) for flavour in FLAVOURS}
  with tempfile.TemporaryDirectory() as scratch:
    labels_file = None
    if labels:
      labels_file = os.path.join(scratch, LABELS_ASSET)
      write_labels(labels_file, labels)
    classifier = _Classifier(model, spec.normalization, image_size, top_k, probabilities, labels, labels_file)
    tf.saved_model.save(classifier, paths["classification"], signatures={
        "serving_default": classifier.serve, "serving_bytes": classifier.serve_bytes})
  feature_vector = _FeatureVector(features, spec.normalization)
  tf.saved_model.save(feature_vector, paths["feature-vector"], signatures={"serving_default": feature_vector.serve})
  return paths
