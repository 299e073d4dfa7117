"""Models from checkpoints: a run's trained model for export, and fine-tuning starts from an official automl
checkpoint, one of our runs or a preset folder (effnetv2_tf.presets).

The classifier is replaced (left as initialised) when the class count differs; everything else must fit.
EMA weights are preferred in both kinds (the weights the source was evaluated with).
"""

import os

from effnetv2_tf import presets
from effnetv2_tf.checkpoints import is_checkpoint
from effnetv2_tf.model import model_from_config
from effnetv2_tf.run_dir import CHECKPOINT_DIR, RunDir
from effnetv2_tf.weights.pretrained import checkpoint_folder
from effnetv2_tf.weights.official import CheckpointError, load_official_checkpoint
from effnetv2_tf.weights.runs import load_averaged_values


def _our_run(path):
  """(checkpoint path, model config) when `path` is one of our run dirs (or a checkpoint in one: a TF engine's
  prefix, a JAX engine's step folder)."""
  is_prefix = is_checkpoint(path)
  if is_prefix and os.path.basename(os.path.dirname(path)) != CHECKPOINT_DIR:
    return None  # a checkpoint outside a run's checkpoints/ folder: an official one
  run_dir = RunDir(os.path.dirname(os.path.dirname(path)) if is_prefix else path)
  config = run_dir.read_config()
  if config is None:
    return None
  prefix = path if is_prefix else run_dir.latest_checkpoint()
  if not prefix:
    raise CheckpointError(f"{run_dir} has no checkpoint to start from.")
  return prefix, config["model"]


def source_run_model(path):
  """The model section of the run `path` belongs to (a run dir or a checkpoint in one) or of the preset it is,
  or None when `path` is neither (e.g. an official checkpoint)."""
  if presets.is_preset(path):
    return presets.model_config(path)
  run = _our_run(path.rstrip("/"))
  return run[1] if run else None


def load_run_model(path, model_config, use_ema=True):
  """A fresh model (in the current precision policy, on the current backend) built from a run's `model_config`
  (its config.yaml's model section) holding the weights of the run's checkpoint `path` (either engine's): the
  EMA's averages by default, else the raw weights."""
  model = model_from_config(model_config, synchronized_bn=False)
  load_averaged_values(path, model, use_ema)
  return model


def _copy_from_our_run(model, prefix, source_config, use_ema):
  _same_model(model, prefix, source_config)
  return _copy_layers(model, load_run_model(prefix, source_config, use_ema), prefix, source_config,
                      f"{prefix}: our checkpoint, {'EMA' if use_ema else 'raw'} weights")


def _same_model(model, path, source_config):
  if source_config["name"] != model.name:
    raise CheckpointError(f"{path} is a {source_config['name']} checkpoint; fine-tuning {model.name} needs the "
                          "same model.")


def _copy_layers(model, source, prefix, source_config, loaded):
  """Every layer of `source` into `model` (the classifier left as initialised when the class count differs);
  `loaded` starts the line that says so."""
  skipped, assignments = [], []
  for layer in model.layers:
    if not layer.weights:
      continue
    theirs = source.get_layer(layer.name).get_weights()
    if [w.shape for w in theirs] != [tuple(w.shape) for w in layer.weights]:
      if layer.name != "predictions":
        raise CheckpointError(f"{prefix}: layer {layer.name} has other shapes than in {model.name} "
                              "(width/depth differ?). Nothing was loaded.")
      skipped.append(layer.name)
      continue
    assignments.append((layer, theirs))
  for layer, theirs in assignments:  # only once every layer fits
    layer.set_weights(theirs)
  return loaded + (
      f", classifier re-initialised ({source_config['num_classes']} -> {model.get_layer('predictions').units} classes)"
      if skipped else "")


def warm_start(model, path, use_ema=True):
  """Loads `path` (official checkpoint, a pretraining's name, our model_dir or one of its checkpoints, a preset
  folder) into `model`; returns a one-line description of what was loaded."""
  if presets.is_preset(path):  # its one set of weights: the EMA's, where the weights came from had one
    source_config = presets.model_config(path)
    _same_model(model, path, source_config)
    source = presets.from_preset(path, include_preprocessing=False)
    return _copy_layers(model, source, path, source_config, f"{path}: a preset")
  path = checkpoint_folder(model.name, path)
  run = _our_run(path.rstrip("/"))
  if run:
    return _copy_from_our_run(model, *run, use_ema)
  return str(load_official_checkpoint(model, path, use_ema=use_ema, replace_mismatched_classifier=True))
