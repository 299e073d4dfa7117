"""The settings a data set decides for a recipe, from what it says about itself (effnetv2_tf.data.facts.DataFacts:
read by effnetv2_tf.train.run_data.data_facts): model.num_classes and data.num_train_examples where the recipe
leaves them unset, data.eval_files when its pattern is no split of the data and the data has one other split,
and with data.image_size_from_data (the photos-* sets) the unset train and eval sizes (the model's, or
for small photos UPSAMPLE_MAX times theirs).

Plain values in, plain values out: settings_from_facts reads the recipe and returns {"group.key": value} and a
line per value taken; hparams.with_facts applies them to a copy.
"""

from effnetv2_tf.specs import get_model_spec


def train_split_of(recipe, facts):
  """The split of `facts` the recipe trains on: TFDS names it; a TFRecord folder's is the split whose files are
  data.train_files (None when none is)."""
  data = recipe.data
  if data.source == "tfds":
    return data.train_split
  return next((split for split, files in facts.files.items() if files == data.train_files), None)


def settings_from_facts(recipe, facts, explicit=()):
  """({"group.key": value}, lines): what `facts` decide for the unresolved `recipe`.

  A class count that contradicts the data is a ValueError, and so is an example count the hparams set
  pinned (imagenet-b0's 1,281,167 on a folder of photos); an example count given in --hparam_str (a key in
  `explicit`) is kept -- it only sets what the schedule calls an epoch -- with a line saying so.
  """
  if facts is None:
    return {}, []
  if facts.num_classes is not None and facts.num_classes < 2:
    raise ValueError(f"{facts.where}: the data has {facts.num_classes} class, and a classifier needs at least 2: add "
                     "a folder of photos per class and convert them again.")
  data, train_split = recipe.data, train_split_of(recipe, facts)
  values, lines, contradictions = {}, [], []
  others = [split for split in facts.files if split != train_split]
  if facts.files and data.eval_files not in facts.files.values() and len(others) == 1:
    values["data.eval_files"] = facts.files[others[0]]
    lines.append(f"data.eval_files {facts.files[others[0]]}: the data's {others[0]} split ({facts.where})")
  for key, given, found in (("model.num_classes", recipe.model.num_classes, facts.num_classes),
                            ("data.num_train_examples", data.num_train_examples, facts.examples.get(train_split))):
    if found is None or given == found:
      continue
    if given is None:
      values[key] = found
      lines.append(f"{key} {found:,} ({facts.where})")
    elif key == "data.num_train_examples" and key in explicit:
      lines.append(f"{key} {given:,} as given, although {facts.where} counts {found:,}: epochs are "
                   f"{given:,} examples long")
    else:
      contradictions.append((key, given, found))
  if contradictions:
    said = ", ".join(f"{key} is {value:,} but the data has {found:,}" for key, value, found in contradictions)
    fix = ",".join(f"{key}={found}" for key, _, found in contradictions)
    raise ValueError(f"{facts.where}: {said}. Pass --hparam_str=\"{fix}\", or use a set that takes them from the "
                     "data (e.g. --hparams=photos-b0).")
  if data.image_size_from_data and train_split in facts.image_sizes:
    sizes, line = _sizes_from_data(recipe, facts.image_sizes[train_split], facts.where)
    values.update(sizes)
    lines += [line] if line else []
  return values, lines


# Photos are upsampled to at most this many times their size: beyond it, the pixels cost steps without helping
# (measured: docs/benchmarks.md).
UPSAMPLE_MAX = 4


def _sizes_from_data(recipe, native, where):
  """({"group.key": size}, the line saying so or None): the last stage's train size and the eval size where
  unset: the model's own sizes, or for photos smaller than a quarter of them, UPSAMPLE_MAX times the photos'
  median shorter side `native` (train sizes a multiple of 16)."""
  spec = get_model_spec(recipe.model.name)
  most = UPSAMPLE_MAX * native
  sizes = {key: size for key, given, size in (
      ("progressive.image_size_max", recipe.progressive.image_size_max, min(spec.train_size, most // 16 * 16)),
      ("eval.image_size", recipe.eval.image_size, min(spec.eval_size, most))) if given is None}
  if not sizes:
    return {}, None
  taken = ", ".join(f"{key} {size}" for key, size in sizes.items())
  why = (f"{recipe.model.name}'s own sizes" if most >= spec.eval_size else
         f"at most {UPSAMPLE_MAX}x the photos' size (more costs steps without helping; {recipe.model.name} trains "
         f"at {spec.train_size} and evaluates at {spec.eval_size})")
  return sizes, f"{taken}: {why}; the photos' median shorter side is {native} px ({where})"
