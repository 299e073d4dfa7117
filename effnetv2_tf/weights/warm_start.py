"""Starts a model from a checkpoint for fine-tuning: an official automl checkpoint or one of our runs.

The classifier is replaced (left as initialised) when the class count differs; everything else must fit.
EMA weights are preferred in both kinds (the weights the source was evaluated with).
"""

import os

import tensorflow as tf
import yaml

from effnetv2_tf.model import model_from_config
from effnetv2_tf.train.ema import ExponentialMovingAverage, averaged_variables
from effnetv2_tf.weights.official import CheckpointError, load_official_checkpoint

OUR_CONFIG = "config.yaml"


def _our_run(path):
  """(checkpoint prefix, model config) when `path` is one of our model dirs (or a checkpoint in one)."""
  model_dir = path if tf.io.gfile.exists(os.path.join(path, OUR_CONFIG)) else os.path.dirname(
      os.path.dirname(path.rstrip("/")))
  config_path = os.path.join(model_dir, OUR_CONFIG)
  if not tf.io.gfile.exists(config_path):
    return None
  prefix = path if tf.io.gfile.exists(f"{path}.index") else tf.train.latest_checkpoint(
      os.path.join(model_dir, "checkpoints"))
  if not prefix:
    raise CheckpointError(f"{model_dir} has no checkpoint to start from.")
  with tf.io.gfile.GFile(config_path) as f:
    return prefix, yaml.safe_load(f.read())["model"]


def _copy_from_our_run(model, prefix, source_config, use_ema):
  if source_config["name"] != model.name:
    raise CheckpointError(f"{prefix} is a {source_config['name']} checkpoint; fine-tuning {model.name} needs the "
                          "same model.")
  source = model_from_config(source_config, synchronized_bn=False)
  ema = ExponentialMovingAverage(averaged_variables(source), decay=0.0)
  tf.train.Checkpoint(model=source, ema=ema).read(prefix).expect_partial()
  skipped, assignments = [], []
  if use_ema:
    for variable, shadow in zip(averaged_variables(source), ema.shadows):
      variable.assign(shadow)
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
  return f"{prefix}: our checkpoint, {'EMA' if use_ema else 'raw'} weights" + (
      f", classifier re-initialised ({source_config['num_classes']} -> {model.get_layer('predictions').units} classes)"
      if skipped else "")


def warm_start(model, path, use_ema=True):
  """Loads `path` (official checkpoint, our model_dir or one of its checkpoints) into `model`; returns a
  one-line description of what was loaded."""
  run = _our_run(path)
  if run:
    return _copy_from_our_run(model, *run, use_ema)
  return str(load_official_checkpoint(model, path, use_ema=use_ema, replace_mismatched_classifier=True))
