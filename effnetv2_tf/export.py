"""SavedModel export in the TF-Hub layout: EXPORT_DIR/classification and EXPORT_DIR/feature-vector,
and optionally EXPORT_DIR/classification.tflite.

  python -m effnetv2_tf.export --official efficientnetv2-s/ --model efficientnetv2-s export/v2-s

exports an official automl checkpoint (the unpacked tarball: 1k, 21k or 21k-ft1k; EMA weights) without
training or a model_dir (export_official); `python main.py --mode=export` exports one of our runs (export_run).

Both take float images in [0, 1] of any height, width and batch ([None, None, None, 3]) and apply the
model family's normalization inside, so users never need this package to run them. Signatures and their
named outputs:
  classification  serving_default(images) -> logits, probabilities
                  serving_bytes(image_bytes) -> classes, scores (top-k), class_names (when known)
  feature-vector  serving_default(images) -> features
Calling a loaded model directly (TF-Hub style) gives the logits (or probabilities) and the features.
serving_bytes decodes encoded JPEG/PNG bytes with the official eval crop and resize at the eval size. Load
with tf.saved_model.load, or wrap with keras.layers.TFSMLayer to fine-tune. The class names, when known,
also travel with the classification model as its asset labels.txt.
"""

import argparse
import os
import sys
import tempfile

from effnetv2_tf.quiet_start import import_tensorflow

tf = import_tensorflow()  # first: without TensorFlow's start-up banner (python -m effnetv2_tf.export)
import keras  # noqa: E402

from effnetv2_tf.data import preprocessing  # noqa: E402

FLAVOURS = ("classification", "feature-vector")
LABELS_ASSET = "labels.txt"
TFLITE_MODES = ("float32", "dynamic-int8")
TFLITE_FILE = "classification.tflite"
EXPORT_ENTRIES = (*FLAVOURS, TFLITE_FILE)  # what an export directory holds


class ExportError(ValueError):
  """The export cannot be written as asked (e.g. the directory is not empty)."""


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


def _prepare_dir(path, overwrite):
  """Refuses a non-empty directory; with `overwrite`, clears it only when it holds nothing but a previous
  export (so a run's checkpoints, or anything else, are never deleted)."""
  if tf.io.gfile.exists(path) and not tf.io.gfile.isdir(path):
    raise ExportError(f"Export path {path} is a file: give a folder.")
  if not (tf.io.gfile.exists(path) and tf.io.gfile.listdir(path)):
    return
  if not overwrite:
    raise ExportError(f"Export directory {path} exists and is not empty: pass --overwrite (or another dir).")
  entries = sorted(name.rstrip("/") for name in tf.io.gfile.listdir(path))
  others = [name for name in entries if name not in EXPORT_ENTRIES]
  if others:
    raise ExportError(f"--overwrite replaces only a previous export, and {path} also holds {', '.join(others[:5])}"
                      f"{' ...' if len(others) > 5 else ''}: choose another --export_dir.")
  for name in entries:
    entry = os.path.join(path, name)
    if tf.io.gfile.isdir(entry):
      tf.io.gfile.rmtree(entry)
    else:
      tf.io.gfile.remove(entry)


def export_saved_models(model, spec, export_dir, image_size=None, top_k=5, probabilities=False, overwrite=False,
                        labels=None):
  """Writes EXPORT_DIR/classification and EXPORT_DIR/feature-vector for a classifier `model`.

  Args:
    model: one of our models with include_top and logits (classifier_activation=None), holding the
      weights to export (e.g. inside ExponentialMovingAverage.averaged_weights()).
    spec: its ModelSpec (normalization, eval size).
    export_dir: the parent folder (local or gs://).
    image_size: the serving_bytes input size; defaults to the spec's eval size.
    top_k: classes returned by serving_bytes.
    probabilities: calling the loaded classification model returns softmax instead of logits (its
      serving_default signature always has both).
    overwrite: replace a previous export in export_dir (nothing else is ever deleted).
    labels: class names by index, saved as classification/assets/labels.txt (predict reads them).

  Returns:
    {flavour: path}.
  """
  _prepare_dir(export_dir, overwrite)
  image_size = image_size or spec.eval_size
  # A feature model sharing the classifier's layers (and so its weights): pooled features before dropout.
  features = keras.Model(model.inputs, model.get_layer("avg_pool").output, name=f"{model.name}-features")
  paths = {flavour: os.path.join(export_dir, flavour) for flavour in FLAVOURS}
  with tempfile.TemporaryDirectory() as scratch:
    labels_file = None
    if labels:
      labels_file = os.path.join(scratch, LABELS_ASSET)
      with open(labels_file, "w", encoding="utf-8") as f:
        f.write("".join(f"{name}\n" for name in labels))
    classifier = _Classifier(model, spec.normalization, image_size, top_k, probabilities, labels, labels_file)
    tf.saved_model.save(classifier, paths["classification"], signatures={
        "serving_default": classifier.serve, "serving_bytes": classifier.serve_bytes})
  feature_vector = _FeatureVector(features, spec.normalization)
  tf.saved_model.save(feature_vector, paths["feature-vector"], signatures={"serving_default": feature_vector.serve})
  return paths


def _check_tflite_mode(mode):
  if mode not in TFLITE_MODES:
    raise ExportError(f"Unknown TFLite mode {mode!r}; expected one of {TFLITE_MODES}.")


def export_tflite(classification_dir, output_path, image_size, mode="float32"):
  """Converts an exported classification model to TFLite at a fixed [1, image_size, image_size, 3] input.

  Args:
    classification_dir: EXPORT_DIR/classification.
    output_path: the .tflite file to write.
    image_size: the input side (TFLite models take one fixed size).
    mode: "float32", or "dynamic-int8" (weights stored as int8, about 4x smaller).
  """
  _check_tflite_mode(mode)
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


def export_official(checkpoint, model_name, export_dir, use_ema=True, image_size=None, tflite=None,
                    overwrite=False):
  """Exports an official automl checkpoint (its class count read from it) in the TF-Hub layout.

  Returns:
    (LoadReport, {flavour: path}), with "tflite" among the paths when `tflite` names a mode.
  """
  from effnetv2_tf.model import create_model, get_model_spec
  from effnetv2_tf.labels import imagenet_labels_for
  from effnetv2_tf.weights.official import load_official_checkpoint, official_num_classes
  from effnetv2_tf.weights.pretrained import checkpoint_folder
  spec = get_model_spec(model_name)
  if tflite is not None:
    _check_tflite_mode(tflite)  # before the slow part
  checkpoint = checkpoint_folder(model_name, checkpoint)
  num_classes = official_num_classes(checkpoint, model_name)
  if num_classes is None:
    raise ExportError(f"{checkpoint} has no {model_name} classifier (head/dense) to export.")
  keras.mixed_precision.set_global_policy("float32")
  model = create_model(model_name, num_classes=num_classes, classifier_activation=None)
  report = load_official_checkpoint(model, checkpoint, use_ema=use_ema)
  image_size = image_size or spec.eval_size
  paths = export_saved_models(model, spec, export_dir, image_size=image_size, overwrite=overwrite,
                              labels=imagenet_labels_for(num_classes))
  if tflite:
    paths["tflite"] = export_tflite(paths["classification"], os.path.join(export_dir, TFLITE_FILE),
                                    image_size, tflite)
  return report, paths


def export_run(run_dir, config, export_dir, overwrite=False, tflite=None):
  """Exports the latest checkpoint of one of our runs (a RunDir; `config` its resolved settings) in the TF-Hub
  layout: its EMA weights in float32 whatever precision trained them, its class names (or ImageNet's for 1k /
  21k classes), at its eval size.

  Returns:
    (the checkpoint's step, {flavour: path}), with "tflite" among the paths when `tflite` names a mode.
  """
  from effnetv2_tf.model import get_model_spec
  from effnetv2_tf.labels import imagenet_labels_for
  from effnetv2_tf.checkpoints import checkpoint_step, first_readable, say_unreadable
  from effnetv2_tf.train.warm_start import load_run_model
  if tflite is not None:
    _check_tflite_mode(tflite)  # before the slow part
  candidates = run_dir.newest_first()
  if not candidates:
    raise FileNotFoundError(f"No checkpoint in {run_dir.checkpoints} to export.")
  keras.mixed_precision.set_global_policy("float32")
  checkpoint, model, unreadable = first_readable(candidates, lambda path: load_run_model(path, config.model))
  say_unreadable(unreadable, checkpoint, "exporting")
  labels = run_dir.read_labels() or imagenet_labels_for(config.model.num_classes)
  paths = export_saved_models(model, get_model_spec(config.model.name), export_dir,
                              image_size=config.eval.image_size, overwrite=overwrite, labels=labels)
  if tflite:
    paths["tflite"] = export_tflite(paths["classification"], os.path.join(export_dir, TFLITE_FILE),
                                    config.eval.image_size, tflite)
  return checkpoint_step(checkpoint), paths


def main(argv=None):
  parser = argparse.ArgumentParser(description="Export an official automl checkpoint as TF-Hub style SavedModels.")
  parser.add_argument("export_dir", help="where EXPORT_DIR/classification and EXPORT_DIR/feature-vector go")
  parser.add_argument("--official", required=True,
                      help="imagenet, imagenet21k or imagenet21k-ft1k (downloaded once), or an unpacked official "
                           "tarball (folder or checkpoint prefix)")
  parser.add_argument("--model", required=True, help="its model, e.g. efficientnetv2-s (also for -21k, -21k-ft1k)")
  parser.add_argument("--raw", action="store_true", help="the raw weights instead of the EMA shadows")
  parser.add_argument("--image_size", type=int, help="serving_bytes crop size (default: the model's eval size)")
  parser.add_argument("--tflite", choices=TFLITE_MODES, help="also write classification.tflite")
  parser.add_argument("--overwrite", action="store_true", help="replace a non-empty export_dir")
  args = parser.parse_args(argv)
  from effnetv2_tf.os_errors import os_error_line
  from effnetv2_tf.weights.pretrained import DownloadError
  try:
    report, paths = export_official(args.official, args.model, args.export_dir, use_ema=not args.raw,
                                    image_size=args.image_size, tflite=args.tflite, overwrite=args.overwrite)
  except (ValueError, DownloadError) as error:  # a bad checkpoint or model name, an export dir in use, no network
    parser.exit(2, f"error: {error}\n")
  except Exception as error:  # noqa: BLE001 -- the machine's refusals: OSError or TensorFlow's errors
    line = os_error_line(error, args.export_dir)
    if line is None:
      raise
    parser.exit(2, f"error: {line}\n")
  print(report)
  for flavour, path in paths.items():
    print(f"{flavour}: {path}")


if __name__ == "__main__":
  sys.exit(main())
