"""A run's data: its sources, its class names, and what the data says about itself (effnetv2_tf.data.facts),
from which hparams.from_data decides the class count, train examples, eval files and photo sizes."""

import os

from effnetv2_tf.data.facts import DATASET_FILE, tfds_facts, tfrecord_facts
from effnetv2_tf.data.sources import TFDSSource, TFRecordSource
from effnetv2_tf.labels import read_labels
from effnetv2_tf.run_dir import LABELS_FILE


def train_source(config, data_dir):
  return _source(config, data_dir, config.data.train_split, config.data.train_files)


def eval_source(config, data_dir):
  return _source(config, data_dir, config.data.eval_split, config.data.eval_files)


def _source(config, data_dir, tfds_split, file_pattern):
  data = config.data
  if data.source == "tfds":
    return TFDSSource(data.tfds_name, tfds_split, data_dir)
  if data.source != "tfrecord":
    raise ValueError(f"Unknown data.source {data.source!r}; expected tfrecord or tfds.")
  if not data_dir:
    raise FileNotFoundError("No --data_dir given: point it at a folder of TFRecords (or data.source=tfds).")
  source = TFRecordSource(os.path.join(data_dir, file_pattern), data.label_offset)
  source.files()  # no matching file is an error now, not after the training stages
  return source


def class_names(config, data_dir):
  """The class names of a TFRecord folder that has a labels.txt (our converter writes one), checked against
  model.num_classes; None when the data names no classes."""
  if config.data.source != "tfrecord" or not data_dir:
    return None
  path = os.path.join(data_dir, LABELS_FILE)
  names = read_labels(path)
  if names is not None and len(names) != config.model.num_classes:
    raise ValueError(f"{path} names {len(names)} classes but model.num_classes is {config.model.num_classes}: "
                     f"set --hparam_str=\"model.num_classes={len(names)}\" (or use the data the model is for).")
  return names


def _listed(names):
  return f" ({', '.join(names[:6])}{', ...' if len(names) > 6 else ''})" if names else ""


def check_run_classes(run_dir, config, data_dir, allow_other_names=False, how_to_allow=""):
  """Refuses a TFRecord folder whose classes are not those of the run in `run_dir` (`config` its settings):
  another count (dataset.json, labels.txt), or, unless `allow_other_names`, other names than the run's
  labels.txt (`how_to_allow` says how to allow them). Returns a line to print when the folder says nothing of its
  classes (no dataset.json, no labels.txt), else None."""
  if config.data.source != "tfrecord" or not data_dir:
    return None
  num_classes = config.model.num_classes
  names = read_labels(os.path.join(data_dir, LABELS_FILE))
  facts = tfrecord_facts(data_dir)
  count = facts.num_classes if facts and facts.num_classes is not None else (len(names) if names else None)
  ours = run_dir.read_labels()
  if count is None:
    return (f"{data_dir} has no {DATASET_FILE} or {LABELS_FILE}: whether it holds the run's {num_classes} classes "
            f"cannot be checked (a label of {num_classes} or more is still refused; fewer classes would go unnoticed)")
  if count != num_classes:
    raise ValueError(f"{data_dir} holds {count} classes{_listed(names)}, but the run {run_dir} was trained on "
                     f"{num_classes}{_listed(ours)}: give data of the run's classes.")
  if names and ours and names != ours and not allow_other_names:
    raise ValueError(f"{data_dir} names other classes{_listed(names)} than the run {run_dir} was trained on"
                     f"{_listed(ours)}: give data of the run's classes{how_to_allow}.")
  return None


def data_facts(recipe, data_dir):
  """What the data in `data_dir` says about itself (a DataFacts, or None): a TFRecord folder's dataset.json,
  or the metadata of the recipe's TFDS data set for its train split. hparams.with_facts takes what it decides."""
  data = recipe.data
  if data.source == "tfds":
    return tfds_facts(data.tfds_name, data_dir, (data.train_split,))
  return tfrecord_facts(data_dir) if data_dir else None


def eval_examples(config, data_dir):
  """The eval split's size as the data in `data_dir` says it (a TFRecord folder's dataset.json, a TFDS data set's
  metadata), or None."""
  data = config.data
  if not data_dir:
    return None
  if data.source == "tfds":
    facts = tfds_facts(data.tfds_name, data_dir, (data.eval_split,))
    return facts.examples.get(data.eval_split) if facts else None
  facts = tfrecord_facts(data_dir)
  return next((facts.examples[split] for split, files in facts.files.items() if files == data.eval_files),
              None) if facts else None
