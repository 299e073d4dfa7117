"""What a data set says about itself: its number of classes and, per split, its files and examples.

Our converter writes DATASET_FILE beside its shards; a prepared TFDS data set keeps the same facts in its
metadata. A run takes model.num_classes, data.num_train_examples and the eval files from them where the
hparams leave them unset, and refuses values that contradict them (effnetv2_tf.train.run_data).
"""

import dataclasses
import json
import os

DATASET_FILE = "dataset.json"


@dataclasses.dataclass(frozen=True)
class DataFacts:
  """Attributes:
    where: what says so (a file, or a TFDS data set's metadata), for messages.
    num_classes: the number of classes, or None when unknown.
    examples: {split: number of examples} (TFRecord split names, or TFDS split strings).
    files: {split: file pattern} of a TFRecord folder ({} for TFDS).
    image_sizes: {split: the median of its images' shorter sides in pixels}, where known.
  """
  where: str
  num_classes: int | None
  examples: dict
  files: dict = dataclasses.field(default_factory=dict)
  image_sizes: dict = dataclasses.field(default_factory=dict)


def write_dataset_file(folder, num_classes, examples, image_sizes):
  """The converter's record of a folder it wrote: splits named by their files' prefix (SPLIT-*)."""
  facts = {"num_classes": num_classes, "splits": {
      split: {"files": f"{split}-*", "examples": count, **({"image_size": image_sizes[split]}
                                                            if split in image_sizes else {})}
      for split, count in examples.items()}}
  with open(os.path.join(folder, DATASET_FILE), "w") as f:
    json.dump(facts, f, indent=2)


def tfrecord_facts(data_dir):
  """The DataFacts of a TFRecord folder our converter wrote (local or gs://), or None without its file."""
  import tensorflow as tf
  path = os.path.join(data_dir, DATASET_FILE)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    try:
      facts = json.load(f)
      splits = facts["splits"]
      return DataFacts(path, facts["num_classes"], {name: split["examples"] for name, split in splits.items()},
                       {name: split["files"] for name, split in splits.items()},
                       {name: split["image_size"] for name, split in splits.items() if "image_size" in split})
    except (ValueError, KeyError, TypeError) as error:
      raise ValueError(f"{path} is damaged ({error}): convert the images again with --overwrite, or delete "
                       "it to give the counts yourself.") from None


def tfds_facts(name, data_dir, splits):
  """The DataFacts of a TFDS data set from its metadata (no data is read): the label feature's classes and
  the examples of each of `splits` the prepared data set has (none when it is not prepared)."""
  import tensorflow_datasets as tfds
  try:
    info = tfds.builder(name, data_dir=data_dir).info
  except ValueError:  # an unknown name: the source says so, in its own words, when it is read
    return None
  label = info.features["label"] if "label" in info.features else None
  examples = {}
  for split in splits:
    try:
      examples[split] = info.splits[split].num_examples
    except (KeyError, ValueError):  # not prepared, or no such split
      pass
  return DataFacts(f"tfds:{name} metadata", getattr(label, "num_classes", None), examples)
