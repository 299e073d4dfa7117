"""The photos an export checks its files on, as float images in [0, 1] (the exported models' input): the demo's
shipped photos for the logits each runtime computes, and a run's own data for what quantizing costs."""

import pathlib

import numpy as np

from effnetv2_tf.data import preprocessing
from effnetv2_tf.quiet_start import import_tensorflow

tf = import_tensorflow()

DEMO_VAL = pathlib.Path(__file__).resolve().parents[1] / "demo_data" / "val"


def _unit(images, normalization):
  return preprocessing.denormalize(images, normalization) / 255.0


def demo_photos(image_size, normalization, count=8):
  """`count` of the demo's val photos (real photos shipped with the package), eval-cropped: [count, S, S, 3]."""
  files = sorted(DEMO_VAL.glob("*/*.jpg"))[::10][:count]
  images = [preprocessing.preprocess_for_eval(tf.constant(path.read_bytes()), image_size, normalization)
            for path in files]
  return np.asarray(_unit(tf.stack(images), normalization), np.float32)


def labelled_photos(source, image_size, normalization, num_classes, limit):
  """Up to `limit` examples of a data source (effnetv2_tf.data.sources), eval-cropped: ([N, S, S, 3], [N] labels)."""
  from effnetv2_tf.data.pipeline import Preprocessing, eval_dataset
  dataset = eval_dataset(source, Preprocessing(image_size, normalization), batch_size=32, num_classes=num_classes)
  images, labels = [], []
  for batch_images, batch_labels in dataset.unbatch().take(limit).batch(64).as_numpy_iterator():
    images.append(np.asarray(_unit(batch_images, normalization), np.float32))
    labels.append(np.argmax(batch_labels, axis=-1))
  if not images:
    return np.zeros((0, image_size, image_size, 3), np.float32), np.zeros((0,), np.int64)
  return np.concatenate(images), np.concatenate(labels)
