"""Named hparam sets (ml-collections ConfigDicts), --hparam_str overrides and resolution of model defaults.

One pipeline from a set's name to the config a run trains, each step returning a new config:
  recipe = override(get_config("photos-b0"), "train.batch_size=64")    # a named set, --hparam_str
  recipe, notes = with_facts(recipe, data_facts, source_model, explicit)  # what the data and a source run say
  config = resolve(recipe, epochs=12.0)     # every None filled: the model's spec, the photos-* rules (photos.py)
Plain Python and ml-collections: importing it loads neither TensorFlow nor Keras; what the data and a source
run say is read elsewhere (effnetv2_tf.train.run_data.data_facts, warm_start.source_run_model) and comes in as
plain values.
"""

import ast
import sys

import ml_collections

from effnetv2_tf.specs import get_model_spec
from hparams import base, demo, finetune, from_data, imagenet, photos

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


def _split_assignments(hparam_str):
  """Splits 'a=1,b=[1,2],c=x' on the commas outside brackets and quotes."""
  parts, depth, quote, current = [], 0, None, ""
  for char in hparam_str:
    if quote:
      quote = None if char == quote else quote
    elif char in "'\"":
      quote = char
    elif char in "([{":
      depth += 1
    elif char in ")]}":
      depth -= 1
    elif char == "," and depth == 0:
      parts.append(current)
      current = ""
      continue
    current += char
  parts.append(current)
  return [part.strip() for part in parts if part.strip()]


def _parse_value(text):
  lowered = text.strip().lower()
  if lowered in ("true", "false"):
    return lowered == "true"
  if lowered in ("none", "null"):
    return None
  try:
    return ast.literal_eval(text.strip())
  except (ValueError, SyntaxError):
    return text.strip()


# Keys renamed when the recipe was grouped by concept: --hparam_str takes the old names too (with a note),
# and upgrade() moves them in the config.yaml of runs started before.
RENAMED = {
    "model.dropout_rate": "regularization.dropout_max",
    "model.dropout_min": "regularization.dropout_min",
    "model.survival_prob": "regularization.survival_prob",
    "data.augment": "augment.policy",
    "data.randaug_layers": "augment.randaug_layers",
    "data.crop_area_min": "augment.crop_area_min",
    "train.randaug_min": "augment.magnitude_min",
    "train.randaug_max": "augment.magnitude_max",
    "train.mixup_max": "mixing.mixup_max",
    "train.cutmix_max": "mixing.cutmix_max",
    "train.stages": "progressive.stages",
    "train.progressive_rule": "progressive.rule",
    "train.base_image_size": "progressive.image_size_min",
    "train.image_size": "progressive.image_size_max",
}


def upgrade(saved):
  """A copy of a saved config dict (a run's config.yaml) with the keys of RENAMED under their new names."""
  saved = {group: dict(values) for group, values in saved.items()}
  for old, new in RENAMED.items():
    (old_group, old_key), (new_group, new_key) = old.split("."), new.split(".")
    if old_key in saved.get(old_group, {}):
      saved.setdefault(new_group, {})[new_key] = saved[old_group].pop(old_key)
  return saved


def missing_keys(saved):
  """The "group.key" names of this version a saved config (upgraded) lacks: keys added since it was written,
  or lost from a file cut short."""
  return [f"{group}.{key}" for group, values in get_config("base").items() for key in values
          if key not in saved.get(group, {})]


def with_defaults(saved):
  """A copy of a saved config (upgraded) with the keys it lacks at this version's defaults."""
  saved = {group: dict(values) for group, values in saved.items()}
  for group, values in get_config("base").items():
    for key, value in values.items():
      saved.setdefault(group, {}).setdefault(key, value)
  return saved


def check_saved(saved, where, fix, reference=None):
  """Checks a saved config (a run's config.yaml): a section per group, every group and key it must hold, and
  each key this version knows holding a value of its type; one ValueError naming `where`, the first problem and
  `fix`. `reference`: a copy of the same settings (a checkpoint's), whose keys the file must hold too."""
  base = get_config("base")
  damaged = f"{where} is damaged"
  for group, values in saved.items():
    if not isinstance(values, dict):
      raise ValueError(f"{damaged}: {group} is {values!r}, not a section of settings; {fix}.")
  upgraded = upgrade(saved)
  # Every version wrote every group and a model's name and class count, and the keys the reference holds: a file
  # without them was cut short. Keys neither holds came after the run (with_defaults gives them).
  missing = [group for group in base if group not in upgraded] or [
      f"model.{key}" for key in ("name", "num_classes") if key not in upgraded["model"]]
  if not missing and reference:
    missing = [name for name in missing_keys(upgraded) if name not in missing_keys(upgrade(reference))]
  if missing:
    listed = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
    raise ValueError(f"{damaged}: {listed} {'is' if len(missing) == 1 else 'are'} missing (a file cut short?); "
                     f"{fix}.")
  for group, values in upgraded.items():
    for key, value in values.items():
      if group not in base or key not in base[group]:
        continue  # a key of another version: upgrade renames the known ones
      current, name = base[group][key], f"{group}.{key}"
      if current is None:  # unset until a run sets it: a number (or, for a choice, a name)
        fits = value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)) or (
            name in _CHOICES and isinstance(value, str))
      else:
        try:
          ml_collections.ConfigDict({key: current})[key] = value
          fits = value is not None or name not in ("model.name", "model.num_classes")  # a model needs both
        except TypeError:
          fits = False
      if not fits:
        expected = {int: "a whole number", float: "a number", str: "a name", bool: "true or false"}.get(
            type(current), "a number")
        raise ValueError(f"{damaged}: {name} is {value!r}, not {expected}; {fix}.")


def _valid_keys(config, prefix=""):
  keys = []
  for key, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      keys += _valid_keys(value, f"{prefix}{key}.")
    else:
      keys.append(prefix + key)
  return keys


def assigned_keys(hparam_str):
  """The keys an --hparam_str sets, under their current names."""
  keys = {item.split("=", 1)[0].strip() for item in _split_assignments(hparam_str or "") if "=" in item}
  return {RENAMED.get(key, key) for key in keys}


def override(config, hparam_str):
  """A copy of `config` with 'a.b=1,c.d=x' applied; unknown keys and wrong types raise one clear ValueError."""
  config = ml_collections.ConfigDict(config.to_dict())
  for assignment in _split_assignments(hparam_str or ""):
    if "=" not in assignment:
      raise ValueError(f"Bad --hparam_str item {assignment!r}: expected key=value, e.g. train.batch_size=256.")
    key, text = assignment.split("=", 1)
    key = key.strip()
    if key in RENAMED:
      print(f"note: hparam {key} is now called {RENAMED[key]}", file=sys.stderr)
      key = RENAMED[key]
    *groups, leaf = key.split(".")
    node = config
    for group in groups:
      node = node.get(group) if isinstance(node, ml_collections.ConfigDict) else None
    if not isinstance(node, ml_collections.ConfigDict) or leaf not in node or isinstance(
        node[leaf], ml_collections.ConfigDict):
      raise ValueError(f"Unknown hparam {key!r}. Valid keys: {', '.join(_valid_keys(config))}.")
    value = _parse_value(text)
    if value is None and text.strip().lower() == "none" and "none" in _CHOICES.get(key, ()):
      value = "none"  # the choice "none" (e.g. no augmentation), not None (the model's own recipe)
    current = node[leaf]
    if isinstance(current, str) and isinstance(value, bool):  # "auto"-or-bool keys stay strings: "true"/"false"
      value = str(value).lower()
    if isinstance(value, bool) and current is not None and not isinstance(current, bool):
      raise ValueError(f"hparam {key!r} takes a {type(current).__name__} (now {current!r}), got {text.strip()!r}.")
    if current is not None and value is not None and isinstance(value, str) != isinstance(current, str):
      raise ValueError(f"hparam {key!r} takes a {type(current).__name__} (now {current!r}), got {text.strip()!r}.")
    try:
      node[leaf] = value
    except TypeError:
      raise ValueError(f"hparam {key!r} takes a {type(current).__name__} (now {current!r}), "
                       f"got {text.strip()!r}.") from None
  return config


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


# Keys that must be at least 1 (counts, sizes, cadences), and the allowed values of the named choices.
_POSITIVE = ("model.num_classes", "data.num_train_examples", "data.shuffle_buffer", "train.batch_size",
             "progressive.image_size_max", "progressive.image_size_min", "eval.batch_size", "eval.image_size",
             "runtime.steps_per_loop", "runtime.checkpoint_steps", "runtime.keep_checkpoints")
_CHOICES = {"data.source": ("tfrecord", "tfds"), "augment.policy": ("randaug", "autoaug", "none"),
            "progressive.rule": ("official", "paper"), "train.loss_type": ("softmax", "sigmoid"),
            "runtime.mixed_precision": ("auto", "bfloat16", "float16", "float32"),
            "runtime.jit_compile": ("auto", "true", "false")}


def _value(config, key):
  group, leaf = key.split(".")
  return config[group][leaf]


def _check(config):
  """One clear ValueError for a value no run can use, before anything is built."""
  for key in _POSITIVE:
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
  for key, choices in _CHOICES.items():
    if str(_value(config, key)).lower() not in choices:
      raise ValueError(f"hparam {key!r} is {_value(config, key)!r}; expected one of {', '.join(choices)}.")
