"""Class names by index: label files (one name per line, as the converter and runs write them; the shipped
`synset<TAB>names` lines too) and the ImageNet lists shipped beside this module (see README.md)."""

import pathlib

SHIPPED = {"imagenet1k": "imagenet1k_labels.txt", "imagenet21k": "imagenet21k_labels.txt"}
_IMAGENET_CLASSES = {1000: "imagenet1k", 21_843: "imagenet21k"}


def read_labels(path):
  """The names in a label file (local or gs://), or None when there is no such file."""
  import tensorflow as tf  # only when a file is read: predict imports TensorFlow its own (quiet) way
  if not tf.io.gfile.exists(str(path)):
    return None
  with tf.io.gfile.GFile(str(path)) as f:
    return [line.split("\t", 1)[-1].strip() for line in f.read().splitlines() if line.strip()]


def write_labels(path, names):
  """Writes `names` as a label file (local or gs://), one a line: what read_labels reads back."""
  import tensorflow as tf
  with tf.io.gfile.GFile(str(path), "w") as f:
    f.write("".join(f"{name}\n" for name in names))


def load_labels(name_or_path):
  """The names of a shipped list (imagenet1k, imagenet21k) or of a label file; FileNotFoundError without one."""
  path = pathlib.Path(__file__).resolve().parent / SHIPPED[name_or_path] if name_or_path in SHIPPED else name_or_path
  names = read_labels(path)
  if names is None:
    raise FileNotFoundError(f"No label file {path}: use imagenet1k, imagenet21k or a file with one name per line.")
  return names


def imagenet_labels_for(num_classes):
  """The shipped ImageNet class names for a 1k or 21k classifier, else None."""
  name = _IMAGENET_CLASSES.get(num_classes)
  return load_labels(name) if name else None
