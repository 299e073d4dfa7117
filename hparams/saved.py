"""A run's saved settings (its config.yaml, or the copy inside a checkpoint) read by a later version: renamed keys
moved (upgrade), keys added since filled in (with_defaults), and a damaged file told apart from an older one
(check_saved)."""

import ml_collections

from effnetv2_tf.hparams import base
from effnetv2_tf.hparams.base import CHOICES
from effnetv2_tf.hparams.overrides import RENAMED


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
  return [f"{group}.{key}" for group, values in base.get_config().items() for key in values
          if key not in saved.get(group, {})]


def with_defaults(saved):
  """A copy of a saved config (upgraded) with the keys it lacks at this version's defaults."""
  saved = {group: dict(values) for group, values in saved.items()}
  for group, values in base.get_config().items():
    for key, value in values.items():
      saved.setdefault(group, {}).setdefault(key, value)
  return saved


def check_saved(saved, where, fix, reference=None):
  """Checks a saved config (a run's config.yaml): a section per group, every group and key it must hold, and
  each key this version knows holding a value of its type; one ValueError naming `where`, the first problem and
  `fix`. `reference`: a copy of the same settings (a checkpoint's), whose keys the file must hold too."""
  defaults = base.get_config()
  damaged = f"{where} is damaged"
  for group, values in saved.items():
    if not isinstance(values, dict):
      raise ValueError(f"{damaged}: {group} is {values!r}, not a section of settings; {fix}.")
  upgraded = upgrade(saved)
  # Every version wrote every group and a model's name and class count, and the keys the reference holds: a file
  # without them was cut short. Keys neither holds came after the run (with_defaults gives them).
  missing = [group for group in defaults if group not in upgraded] or [
      f"model.{key}" for key in ("name", "num_classes") if key not in upgraded["model"]]
  if not missing and reference:
    missing = [name for name in missing_keys(upgraded) if name not in missing_keys(upgrade(reference))]
  if missing:
    listed = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
    raise ValueError(f"{damaged}: {listed} {'is' if len(missing) == 1 else 'are'} missing (a file cut short?); "
                     f"{fix}.")
  for group, values in upgraded.items():
    for key, value in values.items():
      if group not in defaults or key not in defaults[group]:
        continue  # a key of another version: upgrade renames the known ones
      current, name = defaults[group][key], f"{group}.{key}"
      if current is None:  # unset until a run sets it: a number (or, for a choice, a name)
        fits = value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)) or (
            name in CHOICES and isinstance(value, str))
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
