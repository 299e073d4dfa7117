"""Writes a model in the formats asked for, each checked by the runtime that reads it (effnetv2_tf.export).

Every format takes float images in [0, 1] with the model's normalization inside and gives logits. ONNX, float32
LiteRT files and Keras presets (reloaded) are checked against Keras on the demo's photos (logits within 1e-4 of the
logit scale); the quantized
LiteRT variants' top-1 is measured on the run's val photos beside float32's, and a variant that loses more than
max_accuracy_drop points is not written.
"""

import dataclasses
import os
import tempfile

from effnetv2_tf import presets, quiet_start
from effnetv2_tf.quiet_start import import_tensorflow

tf = import_tensorflow()  # first: without TensorFlow's start-up banner (python -m effnetv2_tf.export)
import keras  # noqa: E402
import numpy as np  # noqa: E402

from effnetv2_tf.export import litert, onnx, photos  # noqa: E402
from effnetv2_tf.export.formats import (EXPORT_ENTRIES, FORMATS, LABELS_FILE, QUANTIZED,  # noqa: E402
                                        ExportError, parse_formats)
from effnetv2_tf.export.saved_model import export_saved_models  # noqa: E402
from effnetv2_tf.labels import write_labels  # noqa: E402

PARITY = 1e-4  # float32 files: largest logit difference from Keras', relative to the largest logit
ACCURACY_IMAGES = 1000  # val photos a quantized variant is measured on (the first ones)
REPRESENTATIVE_IMAGES = 200  # training photos that calibrate litert-int8
# What the LiteRT converter and interpreter write on stderr about their own settings at every file.
CONVERTER_NOISE = ("tf_tfl_flatbuffer_helpers.cc", "flatbuffer_export.cc", "fully_quantize: ",
                   "Created TensorFlow Lite XNNPACK delegate")


@dataclasses.dataclass
class Photos:
  """What an export measures quantized variants with: labelled val photos and, for litert-int8, training photos
  (float images in [0, 1] at the export's size); `origin` says where they came from."""
  val_images: np.ndarray
  val_labels: np.ndarray
  representative: np.ndarray
  origin: str


@dataclasses.dataclass
class Written:
  """One format's files in EXPORT_DIR and what its check measured (a line for the user)."""
  name: str
  paths: list
  check: str = ""

  def line(self):
    return f"{self.name}: {', '.join(self.paths)}" + (f" ({self.check})" if self.check else "")


def prepare_dir(path, overwrite):
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


def _check_request(formats, photos_, allow_accuracy_drop):
  """Refuses, before anything slow, a quantized variant that cannot be measured or calibrated."""
  quantized = [name for name in formats if name in QUANTIZED]
  if "litert-int8" in formats and (photos_ is None or not len(photos_.representative)):
    raise ExportError("litert-int8 calibrates its int8 ranges on the run's training photos: give --data_dir "
                      "(the run's data), or choose litert-dynamic-int8.")
  if quantized and (photos_ is None or not len(photos_.val_labels)) and not allow_accuracy_drop:
    raise ExportError(f"{', '.join(quantized)}: what quantizing costs is measured on labelled val photos, and there "
                      "are none here: give --data_dir (the run's data), or pass --allow_accuracy_drop to write it "
                      "unmeasured.")


def _top1(logits, labels):
  return float(np.mean(np.argmax(logits, axis=-1) == labels)) if len(labels) else float("nan")


def write(model, spec, export_dir, formats=("saved_model",), image_size=None, labels=None, overwrite=False,
          photos_=None, max_accuracy_drop=2.0, allow_accuracy_drop=False, card=None, say=lambda line: None):
  """Writes `model` (logits out, float32, the weights to export loaded) into export_dir in each of `formats`.

  Args:
    spec: its ModelSpec (normalization, eval size).
    card: a presets.Card (what builds the model, where its weights came from, their licence): needed by "preset".
    image_size: the size LiteRT files take and serving_bytes crops to; defaults to the spec's eval size.
    labels: class names by index (the SavedModel's asset, EXPORT_DIR/labels.txt, the ONNX file's metadata).
    photos_: a Photos for the quantized LiteRT variants (litert-int8 needs its representative images).
    max_accuracy_drop: top-1 points a quantized variant may lose against float32 on photos_' val images; one
      that loses more is not written (ExportError naming both figures) unless allow_accuracy_drop.
    say: called with each format's line (Written.line) as soon as it is written (a large model's take minutes).

  Returns:
    [Written] in the order of `formats`.
  """
  formats = parse_formats(",".join(formats))
  image_size = image_size or spec.eval_size
  if "preset" in formats and card is None:
    raise ValueError("A preset is written with its card (presets.Card: the model's settings, origin, licence).")
  _check_request(formats, photos_, allow_accuracy_drop)
  prepare_dir(export_dir, overwrite)
  tf.io.gfile.makedirs(export_dir)
  written = []
  if "saved_model" in formats:
    paths = export_saved_models(model, spec, export_dir, image_size=image_size, labels=labels)
    written.append(Written("saved_model", list(paths.values())))
    say(written[-1].line())
  others = [name for name in formats if name != "saved_model"]
  if not others:
    return written
  if labels:
    write_labels(os.path.join(export_dir, LABELS_FILE), labels)
  from effnetv2_tf.export.serving import serving_model
  served = serving_model(model, spec.normalization)
  check = photos.demo_photos(image_size, spec.normalization)
  expected = np.asarray(served(check), np.float64)
  float_top1 = []  # float32's top-1 on photos_' val images, measured once when a quantized variant needs it
  with tempfile.TemporaryDirectory() as scratch, quiet_start.left_out(CONVERTER_NOISE):
    for name in others:
      entry = FORMATS[name][0][0]
      local = os.path.join(scratch, entry)  # written here, then copied (export_dir may be gs://)
      if name == "preset":
        written.append(_write_preset(model, card, image_size, spec.normalization, labels, local, check, expected,
                                     os.path.join(export_dir, entry)))
        say(written[-1].line())
        continue
      if name == "onnx":
        run = onnx.runner(onnx.write(served, local, labels))
      else:
        representative = photos_.representative[:REPRESENTATIVE_IMAGES] if photos_ is not None else None
        run = litert.runner(litert.write(served, local, image_size, name, representative))
      size = f"{os.path.getsize(local) / 1e6:.1f} MB"
      if name not in QUANTIZED:
        line = _same_logits(name, run(check), expected)
      elif photos_ is not None and len(photos_.val_labels):
        if not float_top1:
          float_top1.append(_top1(np.concatenate([np.asarray(served(photos_.val_images[i:i + 64]))
                                                  for i in range(0, len(photos_.val_labels), 64)]),
                                  photos_.val_labels))
        line = _kept_accuracy(name, run(photos_.val_images), photos_, float_top1[0], max_accuracy_drop,
                              allow_accuracy_drop)
      else:
        line = "accuracy not measured (--allow_accuracy_drop; no labelled photos)"
      target = os.path.join(export_dir, entry)
      tf.io.gfile.copy(local, target, overwrite=True)
      written.append(Written(name, [target], f"{size}; {line}"))
      say(written[-1].line())
  return written


def _write_preset(model, card, image_size, normalization, labels, local, check, expected, target):
  """The preset folder, reloaded (effnetv2_tf.from_preset) and its logits compared before its card is written."""
  presets.save(model, card, image_size, normalization, labels, local)
  reloaded = presets.from_preset(local)
  parity = _same_logits("preset", reloaded(check), expected)
  presets.write_card(local, card, f"reloaded by effnetv2_tf.from_preset when written: {parity}, the model it "
                     "was written from")
  tf.io.gfile.makedirs(target)
  for name in presets.FILES:
    tf.io.gfile.copy(os.path.join(local, name), os.path.join(target, name), overwrite=True)
  size = sum(os.path.getsize(os.path.join(local, name)) for name in presets.FILES) / 1e6
  return Written("preset", [target], f"{size:.1f} MB; reloaded: {parity}")


def _same_logits(name, logits, expected):
  """A float32 file's check: its runtime's logits on the demo photos against Keras' (an ExportError beyond PARITY)."""
  difference = float(np.max(np.abs(np.asarray(logits, np.float64) - expected)))
  difference /= max(float(np.max(np.abs(expected))), 1e-6)
  if difference > PARITY:
    raise ExportError(f"{name}: the written model's logits differ from Keras' by {difference:.1e} of the logit "
                      f"scale (more than {PARITY:g}) on the demo photos: not written; please report it.")
  return f"logits within {difference:.0e} of Keras' (relative) on {len(expected)} photos"


def _kept_accuracy(name, logits, photos_, float_top1, max_drop, allow_drop):
  """A quantized file's check: its top-1 on photos_' val images beside float32's (an ExportError beyond max_drop
  points unless allow_drop)."""
  ours = _top1(logits, photos_.val_labels)
  figures = (f"{100 * ours:.1f}% against float32's {100 * float_top1:.1f}% on {len(photos_.val_labels)} "
             f"{photos_.origin}")
  drop = 100 * (float_top1 - ours)
  if drop > max_drop and not allow_drop:
    raise ExportError(f"{name} loses {drop:.1f} points of top-1 ({figures}), more than --max_accuracy_drop "
                      f"{max_drop:g}: not written; pass --allow_accuracy_drop to write it anyway.")
  return f"top-1 {figures}"


def _load_photos(config, data_dir, image_size, normalization, num_classes):
  """Photos from a run's data (train and eval sources of `config`), or None when there is no data_dir."""
  if not data_dir:
    return None
  from effnetv2_tf.train.run_data import eval_source, train_source
  val = photos.labelled_photos(eval_source(config, data_dir), image_size, normalization, num_classes,
                               ACCURACY_IMAGES)
  train = photos.labelled_photos(train_source(config, data_dir), image_size, normalization, num_classes,
                                 REPRESENTATIVE_IMAGES)
  return Photos(*val, train[0], f"val photos of {data_dir}")


def export_official(checkpoint, model_name, export_dir, use_ema=True, image_size=None, formats=("saved_model",),
                    overwrite=False, allow_accuracy_drop=False, say=lambda line: None):
  """Exports an official automl checkpoint (its class count read from it) in each of `formats`. Quantized LiteRT
  variants need allow_accuracy_drop (no labelled ImageNet photos here); litert-int8 is not offered.

  Returns:
    (LoadReport, [Written]).
  """
  from effnetv2_tf.model import create_model, get_model_spec
  from effnetv2_tf.labels import imagenet_labels_for
  from effnetv2_tf.weights.official import load_official_checkpoint, official_num_classes
  from effnetv2_tf.weights import pretrained
  spec = get_model_spec(model_name)
  formats = parse_formats(",".join(formats))
  _check_request(formats, None, allow_accuracy_drop)  # before the slow part
  folder = pretrained.checkpoint_folder(model_name, checkpoint)
  num_classes = official_num_classes(folder, model_name)
  if num_classes is None:
    raise ExportError(f"{folder} has no {model_name} classifier (head/dense) to export.")
  keras.mixed_precision.set_global_policy("float32")
  model = create_model(model_name, num_classes=num_classes, classifier_activation=None)
  report = load_official_checkpoint(model, folder, use_ema=use_ema)
  say(str(report))
  source = (f"the official {checkpoint} checkpoint, {pretrained.url_of(pretrained.tarball_name(model_name, checkpoint))}"
            if pretrained.is_pretrained_name(checkpoint) else f"the official checkpoint in {folder}")
  card = presets.Card({"name": model_name, "num_classes": num_classes},
                      f"{source} (google/automl), its {'EMA' if use_ema else 'trained (not EMA)'} weights",
                      presets.OFFICIAL_LICENCE)
  written = write(model, spec, export_dir, formats, image_size=image_size, labels=imagenet_labels_for(num_classes),
                  overwrite=overwrite, allow_accuracy_drop=allow_accuracy_drop, card=card, say=say)
  return report, written


def export_run(run_dir, config, export_dir, overwrite=False, formats=("saved_model",), data_dir=None,
               max_accuracy_drop=2.0, allow_accuracy_drop=False, say=lambda line: None):
  """Exports the latest checkpoint of one of our runs (a RunDir; `config` its resolved settings) in each of
  `formats`: its EMA weights in float32 whatever precision trained them, its class names (or ImageNet's for 1k /
  21k classes), at its eval size. data_dir: the run's data, for the quantized LiteRT variants.

  Returns:
    (the checkpoint's step, [Written]).
  """
  from effnetv2_tf.model import MODEL_CONFIG_KEYS, get_model_spec
  from effnetv2_tf.labels import imagenet_labels_for
  from effnetv2_tf.checkpoints import checkpoint_step, first_readable, say_unreadable
  from effnetv2_tf.train.warm_start import load_run_model
  formats = parse_formats(",".join(formats))
  spec = get_model_spec(config.model.name)
  size = config.eval.image_size
  needs_photos = any(name in QUANTIZED for name in formats)
  photos_ = (_load_photos(config, data_dir, size, spec.normalization, config.model.num_classes)
             if needs_photos else None)
  _check_request(formats, photos_, allow_accuracy_drop)  # before the slow part
  candidates = run_dir.newest_first()
  if not candidates:
    raise FileNotFoundError(f"No checkpoint in {run_dir.checkpoints} to export.")
  keras.mixed_precision.set_global_policy("float32")
  checkpoint, model, unreadable = first_readable(candidates, lambda path: load_run_model(path, config.model))
  say_unreadable(unreadable, checkpoint, "exporting")
  labels = run_dir.read_labels() or imagenet_labels_for(config.model.num_classes)
  step = checkpoint_step(checkpoint)
  started_from = config.train.ft_init_ckpt or "none, it trained from scratch"
  card = presets.Card({key: config.model[key] for key in ("name", "num_classes", *MODEL_CONFIG_KEYS)
                       if config.model.get(key) is not None and key != "synchronized_bn"},
                      f"step {step} of the effnetv2_tf run {run_dir.path}, its EMA weights",
                      "not stated by the run: the licences of its training data and of the weights it started from "
                      f"(train.ft_init_ckpt: {started_from}) apply")
  written = write(model, spec, export_dir, formats, image_size=size, labels=labels, overwrite=overwrite,
                  photos_=photos_, max_accuracy_drop=max_accuracy_drop, allow_accuracy_drop=allow_accuracy_drop,
                  card=card, say=say)
  return step, written
