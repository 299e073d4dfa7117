"""Named hparam sets (ml-collections ConfigDicts) and the pipeline from a set's name to a run's config.

Each concept in its module: base.py (every key, the allowed values), the sets (demo, imagenet, finetune,
photos), overrides.py (--hparam_str), from_data.py (what a data set decides), photos.py (the photos-* rules
for a run's length and size), saved.py (a run's saved settings read by a later version).

The pipeline, each step returning a new config:
  recipe = override(get_config("photos-b0"), "train.batch_size=64")    # a named set, --hparam_str
  recipe, notes = with_facts(recipe, data_facts, source_model, explicit)  # what the data and a source run say
  config = resolve(recipe, epochs=12.0)     # every None filled: the model's spec, the photos-* rules (photos.py)
Plain Python and ml-collections: importing it loads neither TensorFlow nor Keras; what the data and a source
run say is read elsewhere (effnetv2_tf.train.run_data.data_facts, warm_start.source_run_model) and comes in as
plain values.
"""

import ml_collections

from effnetv2_tf.specs import get_model_spec
from effnetv2_tf.hparams import base, demo, finetune, from_data, imagenet, photos
from effnetv2_tf.hparams.base import CHOICES, POSITIVE, RANGES
from effnetv2_tf.hparams.overrides import RENAMED, assigned_keys, override
from effnetv2_tf.hparams.saved import check_saved, missing_keys, upgrade, with_defaults

__all__ = ["SETS", "RENAMED", "assigned_keys", "check_saved", "get_config", "missing_keys", "override", "resolve",
           "upgrade", "with_defaults", "with_facts", "with_values"]

_V2 = ("b0", "b1", "b2", "b3", "s", "m", "l", "xl")
SETS = {
    "base": base.get_config,
    "demo": demo.demo,
    **{f"imagenet-{v}": (lambda v=v: imagenet.imagenet(f"efficientnetv2-{v}")) for v in _V2},
    **{f"imagenet21k-{v}": (lambda v=v: imagenet.imagenet21k(f"efficientnetv2-{v}")) for v in ("s", "m", "l", "xl")},
    **{f"{d}-ft": (lambda d=d: finetune.finetune(d)) for d in finetune.DATASETS},
    **{f"photos-{v}": (lambda v=v: photos.photos(f"efficientnetv2-{v}")) for v in _V2},
    **{f"photos-ft-{v}": (lambda v=v: finetune.photos(f"efficientnetv2-{v}")) for v in _V2},
}


def get_config(name):
  """The named set; an unknown name raises ValueError listing the valid ones."""
  try:
    return SETS[name]()
  except KeyError:
    raise ValueError(f"Unknown hparams set {name!r}. Valid sets: {', '.join(SETS)}.") from None


def with_values(config, values):
  """A copy of `config` with {"group.key": value} set."""
  config = ml_collections.ConfigDict(config.to_dict())
  for name, value in values.items():
    group, key = name.split(".")
    config[group][key] = value
  return config


def with_facts(recipe, data_facts=None, source_model=None, explicit=()):
  """(a copy of the unresolved `recipe` with what the data and a source run decide, a line per value taken).

  data_facts: the DataFacts of the run's data (or None): from_data.settings_from_facts's rules, `explicit` the
    keys --hparam_str set (assigned_keys).
  source_model: the model section of the run train.ft_init_ckpt fine-tunes from (None: an official checkpoint or
    none): its width and depth where the recipe leaves them unset.
  """
  values, lines = from_data.settings_from_facts(recipe, data_facts, explicit)
  for key in ("width", "depth"):
    if source_model and recipe.model[key] is None and source_model.get(key) is not None:
      values[f"model.{key}"] = source_model[key]
      lines.append(f"model.{key} {source_model[key]}, as in {recipe.train.ft_init_ckpt}")
  return with_values(recipe, values), lines


def resolve(config, epochs=None):
  """A copy of `config` (trained for `epochs` when given) with every None default filled in: from the model's
  spec, and by the photos-* sets' rules for a run's length and size."""
  config = ml_collections.ConfigDict(config.to_dict())
  if epochs is not None:
    config.train.epochs = float(epochs)
  spec = get_model_spec(config.model.name)
  unset = [key for key, value in (("model.num_classes", config.model.num_classes),
                                  ("data.num_train_examples", config.data.num_train_examples)) if value is None]
  if unset:
    raise ValueError(f"Set {' and '.join(unset)} for your data, e.g. --hparam_str=\"model.num_classes=5,"
                     "data.num_train_examples=3000\" (effnetv2_tf.data.convert prints both).")

  def fill(node, key, value):
    if node[key] is None:
      node[key] = value

  fill(config.progressive, "image_size_max", spec.train_size)
  photos.plan_by_length(config, fill)
  fill(config.regularization, "dropout_max", spec.dropout_rate)
  fill(config.augment, "policy", spec.augment)
  fill(config.augment, "magnitude_max", spec.randaug_magnitude or config.augment.magnitude_min)
  fill(config.mixing, "mixup_max", spec.mixup_alpha)
  fill(config.mixing, "cutmix_max", spec.mixup_alpha)
  fill(config.eval, "image_size", spec.eval_size)
  photos.fill_from_run(config, fill)
  _check(config)
  return config


def _value(config, key):
  group, leaf = key.split(".")
  return config[group][leaf]


def _check(config):
  """One clear ValueError for a value no run can use, before anything is built."""
  for key in POSITIVE:
    if _value(config, key) < 1:
      raise ValueError(f"hparam {key!r} must be at least 1, got {_value(config, key)!r}.")
  if config.model.num_classes < 2:
    raise ValueError(f"hparam 'model.num_classes' must be at least 2 (one class leaves nothing to tell apart), got "
                     f"{config.model.num_classes!r}.")
  if config.train.epochs <= 0:
    raise ValueError(f"hparam 'train.epochs' must be positive, got {config.train.epochs!r}.")
  if config.train.time_budget < 0:
    raise ValueError(f"hparam 'train.time_budget' must be 0 (off) or more minutes, got {config.train.time_budget!r}.")
  for key in ("runtime.progress_seconds", "runtime.stop_seconds"):
    if _value(config, key) < 0:
      raise ValueError(f"hparam {key!r} must be 0 or more, got {_value(config, key)!r}.")
  if config.progressive.stages < 0:
    raise ValueError(f"hparam 'progressive.stages' must be 0 or more, got {config.progressive.stages!r}.")
  for key, (words, within) in RANGES.items():
    if _value(config, key) is not None and not within(_value(config, key)):
      raise ValueError(f"hparam {key!r} must be {words}, got {_value(config, key)!r}.")
  for key, choices in CHOICES.items():
    if str(_value(config, key)).lower() not in choices:
      raise ValueError(f"hparam {key!r} is {_value(config, key)!r}; expected one of {', '.join(choices)}.")
