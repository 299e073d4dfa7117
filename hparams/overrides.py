"""--hparam_str: 'group.key=value,...' applied to a copy of a config, with clear refusals, and the keys renamed
since runs were first written (taken under their old names with a note)."""

import ast
import sys

import ml_collections

from effnetv2_tf.hparams.base import CHOICES

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
    if value is None and text.strip().lower() == "none" and "none" in CHOICES.get(key, ()):
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
