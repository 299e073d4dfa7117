"""Loads the official google/automl EfficientNet(V2) checkpoints (TF1 name-based .ckpt) into our models.

Names follow one rule (effnetv2_tf.model.official_names): our variable path, prefixed with the model name;
the classifier may also be saved as head_1/dense (graph-mode uniquifying). The EMA shadow
NAME/ExponentialMovingAverage is preferred when present (the official eval weights), else the raw NAME.

  python -m effnetv2_tf.weights.official CKPT_DIR_OR_PREFIX OUT.weights.h5 --model efficientnetv2-s
"""

import argparse
import dataclasses
import difflib
import os

from effnetv2_tf.quiet_start import import_tensorflow

tf = import_tensorflow()  # first: without TensorFlow's start-up banner (python -m effnetv2_tf.weights.official)
from effnetv2_tf.model.official_names import official_variable_name  # noqa: E402

EMA_SUFFIX = "/ExponentialMovingAverage"


class CheckpointError(ValueError):
  """The checkpoint does not fit the model (another variant, missing or mis-shaped variables)."""


@dataclasses.dataclass
class LoadReport:
  """What a load matched: counts, and which source (EMA or raw) each value came from."""
  checkpoint: str
  loaded: int = 0
  from_ema: int = 0
  skipped_classifier: list = dataclasses.field(default_factory=list)

  def __str__(self):
    text = (f"{self.checkpoint}: {self.loaded} variables loaded ({self.from_ema} from EMA shadows, "
            f"{self.loaded - self.from_ema} raw)")
    if self.skipped_classifier:
      text += f"; classifier left as initialised ({', '.join(self.skipped_classifier)})"
    return text


def _resolve_path(path):
  """A checkpoint prefix from a prefix or a directory holding one.

  In a directory, the prefix its `checkpoint` file names is tried first, then that name inside the directory
  (an unpacked tarball keeps the absolute path it was written at), then the one .index file it holds.
  """
  if tf.io.gfile.isdir(path):
    for prefix in _prefixes_named_by_state_file(path):
      if tf.io.gfile.exists(f"{prefix}.index"):
        return prefix
    indexes = tf.io.gfile.glob(f"{path.rstrip('/')}/*.index")
    if len(indexes) == 1:
      return indexes[0][:-len(".index")]
  if tf.io.gfile.exists(f"{path}.index"):
    return path
  raise CheckpointError(f"{path} is not a TF checkpoint: expected a prefix with a .index file (e.g. "
                        "efficientnetv2-s/model) or a folder holding one.")


def _prefixes_named_by_state_file(directory):
  try:  # unlike tf.train.latest_checkpoint, this logs no error for a path that has moved
    state = tf.train.get_checkpoint_state(directory)
  except ValueError:  # a `checkpoint` file without a path
    return []
  if state is None:
    return []
  named = state.model_checkpoint_path
  return [named, os.path.join(directory, os.path.basename(named.rstrip("/")))]


def _strip_ema(name):
  return name[:-len(EMA_SUFFIX)] if name.endswith(EMA_SUFFIX) else name


def _closest_unused_name(name, shapes, used):
  """The checkpoint variable most like `name` among those nothing was loaded from (EMA shadows and optimizer
  slots, NAME/slot, are not variables of their own)."""
  names = {_strip_ema(other) for other in shapes}
  variables = {other for other in names if other.rsplit("/", 1)[0] not in names}
  unused = sorted(other for other in variables - {_strip_ema(source) for source in used}
                  if other.startswith(name.split("/", 1)[0] + "/"))
  matches = difflib.get_close_matches(name, unused, n=1, cutoff=0.5)
  return matches[0] if matches else None


def official_num_classes(checkpoint, model_name):
  """The class count of an official checkpoint's classifier (1000, or 21843 for the -21k ones); None without one."""
  shapes = tf.train.load_checkpoint(_resolve_path(checkpoint)).get_variable_to_shape_map()
  for name in _candidates(model_name, "predictions/bias"):
    if name in shapes:
      return shapes[name][0]
  return None


def _candidates(model_name, path):
  names = [official_variable_name(model_name, path)]
  if path.startswith("predictions/"):
    names.append(f"{model_name}/head_1/dense/{path[len('predictions/'):]}")
  return names


def load_official_checkpoint(model, checkpoint, use_ema=True, skip_classifier=False,
                             replace_mismatched_classifier=False, model_name=None):
  """Sets `model`'s weights from an official checkpoint; nothing is assigned unless everything fits.

  Args:
    model: one of our models (create_model), e.g. efficientnetv2-s.
    checkpoint: checkpoint prefix or folder (the unpacked official tarball).
    use_ema: prefer NAME/ExponentialMovingAverage (the official eval weights) over NAME.
    skip_classifier: leave the classifier as initialised (fine-tuning to another number of classes).
    replace_mismatched_classifier: leave it as initialised only when its shape differs from the
      checkpoint's (another class count); otherwise that is an error like any other mismatch.
    model_name: the checkpoint's model prefix; defaults to model.name.

  Returns:
    A LoadReport.

  Raises:
    CheckpointError: naming the first missing or mis-shaped variables, or the variant the checkpoint holds.
  """
  prefix = _resolve_path(checkpoint)
  reader = tf.train.load_checkpoint(prefix)
  shapes = reader.get_variable_to_shape_map()
  model_name = model_name or model.name
  if not any(name.startswith(model_name + "/") for name in shapes):
    variants = sorted({name.split("/")[0] for name in shapes if "/" in name and name.split("/")[0] != "global_step"})
    raise CheckpointError(f"{prefix} holds {', '.join(variants[:3]) or 'no model'} variables, not {model_name}: "
                          "load it into that variant.")
  report = LoadReport(prefix)
  assignments, missing, mismatched, found_names = [], [], [], set()
  for variable in model.weights:
    path = variable.path
    if skip_classifier and path.startswith("predictions/"):
      report.skipped_classifier.append(path)
      continue
    found = None
    for name in _candidates(model_name, path):
      for source in ([name + EMA_SUFFIX, name] if use_ema else [name]):
        if source in shapes:
          found = source
          break
      if found:
        break
    if found is None:
      missing.append(official_variable_name(model_name, path))
      continue
    found_names.add(found)
    if tuple(shapes[found]) != tuple(variable.shape):
      if replace_mismatched_classifier and path.startswith("predictions/"):
        report.skipped_classifier.append(path)
        continue
      mismatched.append(f"{found} {tuple(shapes[found])} vs ours {tuple(variable.shape)}")
    else:
      assignments.append((variable, found))
  if missing or mismatched:
    problems = [f"missing {name}" for name in missing[:5]] + [f"shape {text}" for text in mismatched[:5]]
    closest = _closest_unused_name(missing[0], shapes, found_names) if missing else None
    if closest:  # names of the same model that differ: show one pair, so the rule to fix is plain
      problems.insert(0, f"names differ, e.g. the loader expects {missing[0]} and the checkpoint has {closest}")
    raise CheckpointError(f"{prefix} does not fit {model.name} ({len(missing)} missing, {len(mismatched)} "
                          f"mis-shaped): {'; '.join(problems)}. Nothing was loaded.")
  for variable, source in assignments:
    variable.assign(reader.get_tensor(source))
    report.loaded += 1
    report.from_ema += source.endswith(EMA_SUFFIX)
  return report


def main(argv=None):
  from effnetv2_tf.model import create_model
  parser = argparse.ArgumentParser(description="Convert an official automl checkpoint to a Keras weights file.")
  parser.add_argument("checkpoint", help="checkpoint prefix or folder (the unpacked official tarball)")
  parser.add_argument("output", help="where to write the weights (.weights.h5)")
  parser.add_argument("--model", required=True, help="model name, e.g. efficientnetv2-s")
  parser.add_argument("--num_classes", type=int, help="the classifier's classes (default: the checkpoint's, "
                      "1000 or 21843 for the -21k ones)")
  parser.add_argument("--raw", action="store_true", help="load the raw weights instead of the EMA shadows")
  args = parser.parse_args(argv)
  if not args.output.endswith(".weights.h5"):
    parser.exit(2, "error: the output name must end with .weights.h5\n")
  try:
    num_classes = args.num_classes or official_num_classes(args.checkpoint, args.model) or 1000
    model = create_model(args.model, num_classes=num_classes, classifier_activation=None)
    report = load_official_checkpoint(model, args.checkpoint, use_ema=not args.raw)
  except (ValueError, CheckpointError) as error:
    parser.exit(2, f"error: {error}\n")
  model.save_weights(args.output)
  print(report)
  print(f"wrote {args.output} (load with create_model({args.model!r}, num_classes={num_classes})"
        ".load_weights(...))")


if __name__ == "__main__":
  main()
