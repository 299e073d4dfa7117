"""A run's data: its sources, its class names, and the settings the data decides (class count, train
examples, eval files), from what the data says about itself (effnetv2_tf.data.facts)."""

import os

from effnetv2_tf.data.facts import tfds_facts, tfrecord_facts
from effnetv2_tf.data.sources import TFDSSource, TFRecordSource
from effnetv2_tf.labels import read_labels
from effnetv2_tf.specs import get_model_spec
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
  labels.txt (`how_to_allow` says how to allow them)."""
  if config.data.source != "tfrecord" or not data_dir:
    return
  num_classes = config.model.num_classes
  names = read_labels(os.path.join(data_dir, LABELS_FILE))
  facts = tfrecord_facts(data_dir)
  count = facts.num_classes if facts and facts.num_classes is not None else (len(names) if names else None)
  ours = run_dir.read_labels()
  if count is not None and count != num_classes:
    raise ValueError(f"{data_dir} holds {count} classes{_listed(names)}, but the run {run_dir} was trained on "
                     f"{num_classes}{_listed(ours)}: give data of the run's classes.")
  if names and ours and names != ours and not allow_other_names:
    raise ValueError(f"{data_dir} names other classes{_listed(names)} than the run {run_dir} was trained on"
                     f"{_listed(ours)}: give data of the run's classes{how_to_allow}.")


def settings_from_data(config, data_dir, explicit=()):
  """Sets, in the unresolved `config`, what the data says about itself: model.num_classes and
  data.num_train_examples where the config leaves them unset, data.eval_files when its pattern is no split
  of the data and the data has one other split, and with data.image_size_from_data the unset train and eval
  sizes. Returns a line per value taken.

  A class count that contradicts the data is a ValueError, and so is an example count the hparams set
  pinned (imagenet-b0's 1,281,167 on a folder of photos); an example count given in --hparam_str (a key in
  `explicit`) is kept -- it only sets what the schedule calls an epoch -- with a line saying so.
  """
  data = config.data
  if data.source == "tfds":
    facts = tfds_facts(data.tfds_name, data_dir, (data.train_split,))
    train_split = data.train_split
  else:
    facts = tfrecord_facts(data_dir) if data_dir else None
    train_split = next((split for split, files in (facts.files if facts else {}).items()
                        if files == data.train_files), None)
  if facts is None:
    return []
  if facts.num_classes is not None and facts.num_classes < 2:
    raise ValueError(f"{facts.where}: the data has {facts.num_classes} class, and a classifier needs at least 2: add "
                     "a folder of photos per class and convert them again.")
  lines, contradictions = [], []
  others = [split for split in facts.files if split != train_split]
  if facts.files and data.eval_files not in facts.files.values() and len(others) == 1:
    data.eval_files = facts.files[others[0]]
    lines.append(f"data.eval_files {data.eval_files}: the data's {others[0]} split ({facts.where})")
  for key, group, found in (("model.num_classes", config.model, facts.num_classes),
                            ("data.num_train_examples", data, facts.examples.get(train_split))):
    leaf = key.split(".")[1]
    if found is None or group[leaf] == found:
      continue
    if group[leaf] is None:
      group[leaf] = found
      lines.append(f"{key} {found:,} ({facts.where})")
    elif key == "data.num_train_examples" and key in explicit:
      lines.append(f"{key} {group[leaf]:,} as given, although {facts.where} counts {found:,}: epochs are "
                   f"{group[leaf]:,} examples long")
    else:
      contradictions.append((key, group[leaf], found))
  if data.image_size_from_data and train_split in facts.image_sizes:
    lines += _sizes_from_data(config, facts.image_sizes[train_split], facts.where)
  if contradictions:
    said = ", ".join(f"{key} is {value:,} but the data has {found:,}" for key, value, found in contradictions)
    fix = ",".join(f"{key}={found}" for key, _, found in contradictions)
    raise ValueError(f"{facts.where}: {said}. Pass --hparam_str=\"{fix}\", or use a set that takes them from the "
                     "data (e.g. --hparams=photos-b0).")
  return lines


def _sizes_from_data(config, native, where):
  """The last stage's train size and the eval size where unset: the photos' median shorter side `native`,
  at most the model's own sizes (train sizes a multiple of 16)."""
  spec = get_model_spec(config.model.name)
  sizes = ((config.progressive, "image_size_max", min(spec.train_size, native // 16 * 16)),
           (config.eval, "image_size", min(spec.eval_size, native)))
  taken = []
  for group, leaf, size in sizes:
    if group[leaf] is None:
      group[leaf] = size
      taken.append(f"{'progressive' if group is config.progressive else 'eval'}.{leaf} {size}")
  if not taken:
    return []
  return [f"{', '.join(taken)}: the photos' median shorter side is {native} px, {config.model.name} trains at "
          f"{spec.train_size} and evaluates at {spec.eval_size} ({where})"]
