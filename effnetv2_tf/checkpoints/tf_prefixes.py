"""TensorFlow checkpoints: the prefixes checkpoints/ckpt-STEP (ckpt-STEP.index and its .data-K-of-N shards) that
tf.train.CheckpointManager writes and keeps, and its state file checkpoints/checkpoint naming the latest.

What a prefix holds is the TF engine's tf.train.Checkpoint: model, optimizer, rng_states, SETTINGS (the run's
config.yaml text) and ema, whose ema/_variables/I are the values the EMA averages (weights.ema.averaged_variables'
order) and ema/shadows/I their averages.
"""

import os
import re

import tensorflow as tf

NAME = "ckpt"  # tf.train.CheckpointManager's checkpoint_name: checkpoints/ckpt-STEP
STATE_FILE = "checkpoint"  # the manager's state file: the latest checkpoint and the ones it keeps
SETTINGS = "settings"  # the checkpoint's variable holding the run's config.yaml text
DESCRIPTION = "a TensorFlow checkpoint"
AVERAGED_KEY = "ema/{}/{}/.ATTRIBUTES/VARIABLE_VALUE"  # ema/_variables/I (the values), ema/shadows/I (the EMA)


def owns(path):
  """Whether `path` is named like one of our runs' TF checkpoints (ckpt-STEP)."""
  return re.fullmatch(rf"{NAME}-\d+", os.path.basename(path.rstrip("/"))) is not None


def exists(path):
  """Whether `path` is a TF checkpoint prefix (ours or another's, e.g. an official one)."""
  return tf.io.gfile.exists(f"{path}.index")


def complete(folder):
  """[(step, prefix)] of the checkpoints in `folder` whose index and every data shard are there."""
  found = []
  for index in tf.io.gfile.glob(os.path.join(folder, f"{NAME}-*.index")):
    prefix = index[:-len(".index")]
    if not owns(prefix):
      continue
    shards = tf.io.gfile.glob(f"{prefix}.data-*-of-*")  # one listing a checkpoint: on gs://, a request each
    if shards and len(shards) == int(shards[0].rsplit("-of-", 1)[1]):
      found.append((int(prefix.rsplit("-", 1)[1]), prefix))
  return found


def unfinished(name):
  """Whether `name` in the checkpoints folder is what a save killed midway leaves (TensorFlow's ckpt-N_temp/)."""
  return name.rstrip("/").endswith("_temp")


def in_the_way(folder):
  """Checkpoints in `folder` that are not complete and would stop a save at their step: none (TensorFlow's saver
  writes a step's files anew)."""
  return []


def files(prefix):
  """The files a checkpoint is made of (to move it whole)."""
  return tf.io.gfile.glob(f"{prefix}.*")


def named_in_state_file(folder):
  """(the checkpoint the state file names, whether it is there); (None, False) without a state file. Read without
  tf.train.latest_checkpoint, which logs an error line for a name that is not there."""
  try:
    state = tf.train.get_checkpoint_state(folder)
  except ValueError:  # a state file without a path
    state = None
  if state is None or not state.model_checkpoint_path:
    return None, False
  prefix = os.path.join(folder, os.path.basename(state.model_checkpoint_path.rstrip("/")))
  return prefix, exists(prefix)


def state_file_text(names):
  """The state file naming `names` (relative, as the manager writes them), the last one the latest: its text
  format, one path a line."""
  return "".join([f'model_checkpoint_path: "{names[-1]}"\n'] + [f'all_model_checkpoint_paths: "{name}"\n'
                                                                 for name in names])


def settings(prefix):
  """The run's config.yaml text saved in the checkpoint, or None (a checkpoint of a version before the settings
  travelled in it, or one that cannot be read: the restore says so, in its own words)."""
  key = f"{SETTINGS}/.ATTRIBUTES/VARIABLE_VALUE"
  try:
    reader = tf.train.load_checkpoint(prefix)
    return reader.get_tensor(key).decode() if reader.has_tensor(key) else None
  except (tf.errors.OpError, IndexError):  # a damaged data file: "Read less bytes than requested"
    return None


def averaged_values(prefix, count, use_ema=True):
  """The `count` values the EMA averages, as NumPy arrays: the averages by default, else the values themselves.
  A checkpoint that cannot be read or holds another number of them raises ValueError."""
  try:
    reader = tf.train.load_checkpoint(prefix)
  except (tf.errors.OpError, ValueError) as error:
    raise ValueError(f"Checkpoint {prefix} cannot be read: {str(error).splitlines()[0][:200]}") from None
  keys = [AVERAGED_KEY.format("shadows" if use_ema else "_variables", index) for index in range(count + 1)]
  if not all(reader.has_tensor(key) for key in keys[:count]) or reader.has_tensor(keys[count]):
    raise ValueError(f"Checkpoint {prefix} holds another number of weights than the model's {count}.")
  return [reader.get_tensor(key) for key in keys[:count]]
