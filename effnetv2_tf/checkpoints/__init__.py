"""Our runs' checkpoints: the two formats a run folder's checkpoints/ holds, one module each.

  checkpoints/ckpt-STEP.index, .data-*   tf_prefixes: tf.train.Checkpoint prefixes (the TensorFlow engine's)
  checkpoints/ckpt_STEP/                 orbax_steps: Orbax step folders (the JAX engine's)

Both hold the model's weights and BN statistics, the EMA's averages of them, the optimizer's slots and step, the
dropout and stochastic-depth RNG states, and the run's settings (its config.yaml text), so that a
folder whose config.yaml is lost still says how its checkpoints were trained. Each module answers the same
questions (owns, exists, complete, unfinished, files, settings, averaged_values) for its own files; the readers
that take either (the run folder, exports, warm starts) ask format_of.
"""

import os

from effnetv2_tf.checkpoints import orbax_steps, tf_prefixes

FORMATS = (tf_prefixes, orbax_steps)


def format_of(path):
  """The format module of the checkpoint `path`: the one whose checkpoints are named like it (ckpt-STEP,
  ckpt_STEP), else the one it is a checkpoint of under another name (a TF prefix); None when neither."""
  return (next((form for form in FORMATS if form.owns(path)), None)
          or next((form for form in FORMATS if form.exists(path)), None))


def is_checkpoint(path):
  """Whether `path` is a checkpoint of either format (one of our runs' or, as a TF prefix, any other)."""
  return any(form.exists(path) for form in FORMATS)


def checkpoint_step(path):
  """The step a checkpoint of either format was saved at (ckpt-STEP, ckpt_STEP)."""
  return int(os.path.basename(path.rstrip("/")).replace("_", "-").rsplit("-", 1)[1])
