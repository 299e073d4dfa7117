"""Orbax checkpoints: the step folders checkpoints/ckpt_STEP that the JAX engine's CheckpointManager writes, read
in one place (on resume, by exports and warm starts on either backend).

A step folder holds one item (ITEM/): the JAX engine's state as arrays, {"trainable": the trainable weights,
"non_trainable": BN statistics and RNG states, "optimizer": its slots and step, "shadows": the EMA's averages of
the values weights.ema.averaged_variables lists}, and in its metadata file the run's config.yaml text (SETTINGS).
Orbax writes under a temporary name and renames (or, on object stores, writes the commit marker last): a folder
is complete once both files are in it. Orbax and JAX are imported only by what needs them.
"""

import datetime
import errno
import json
import logging
import os
import re
import shutil
import sys

import numpy as np
import tensorflow as tf

PREFIX = "ckpt"  # checkpoints/ckpt_STEP
METADATA_FILE = "_CHECKPOINT_METADATA"
COMMIT_FILE = "commit_success.txt"
TEMPORARY = ".orbax-checkpoint-tmp"  # in the name of a folder whose save has not finished
ITEM = "default"  # the folder of a CheckpointManager's one item inside a step folder
SETTINGS = "settings"  # the metadata's key of the run's config.yaml text
DESCRIPTION = "an Orbax checkpoint"
# What a step folder holds besides its arrays (metadata, OCDBT's manifests and nodes): the demo's 1.9 MB of arrays
# took 2.3-2.5 MB on disk (2026-12-06); a tenth more and 1 MB leave room without refusing a disk that has it.
SAVE_OVERHEAD, SAVE_OVERHEAD_BYTES = 0.1, 1_000_000


def owns(path):
  """Whether `path` is named like a step folder (ckpt_STEP)."""
  return re.fullmatch(rf"{PREFIX}_\d+", os.path.basename(path.rstrip("/"))) is not None


def exists(path):
  return owns(path) and tf.io.gfile.isdir(path)


def step_folder(directory, step):
  return os.path.join(str(directory), f"{PREFIX}_{step}")


def complete(folder):
  """[(step, step folder)] of the step folders in `folder` with their metadata and commit marker."""
  found = []
  for path in tf.io.gfile.glob(os.path.join(folder, f"{PREFIX}_*")):
    if owns(path) and all(tf.io.gfile.exists(os.path.join(path, name)) for name in (METADATA_FILE, COMMIT_FILE)):
      found.append((int(os.path.basename(path.rstrip("/")).rsplit("_", 1)[1]), path))
  return found


def in_the_way(folder):
  """Step folders in `folder` without their metadata or commit marker (a copy cut short, a file lost): Orbax's
  manager would not save again at their step, so a resumed run that retrains it would keep no checkpoint there."""
  whole = {path for _, path in complete(folder)}
  return sorted(path for path in tf.io.gfile.glob(os.path.join(folder, f"{PREFIX}_*"))
                if owns(path) and tf.io.gfile.isdir(path) and path not in whole)


def unfinished(name):
  """Whether `name` in the checkpoints folder is a save cut short (Orbax's ckpt_N.orbax-checkpoint-tmp-*/)."""
  return TEMPORARY in name


def files(path):
  """A step folder moves whole: on gs:// TensorFlow's file system renames a folder object by object."""
  return [path]


def settings(path):
  """The run's config.yaml text in the step folder's metadata, or None."""
  try:
    with tf.io.gfile.GFile(os.path.join(path, METADATA_FILE)) as f:
      return json.load(f).get("custom_metadata", {}).get(SETTINGS)
  except (tf.errors.OpError, ValueError):
    return None


def _local(path):
  return path if "://" in path else os.path.abspath(path)


def step_manager(directory, keep=None, keep_hours=None, background=False):
  """An Orbax CheckpointManager of the step folders `directory`/ckpt_STEP keeping the newest `keep` and one every
  `keep_hours` (tf.train.CheckpointManager's rules). Its saves are complete when save() returns, or, with
  `background`, once the arrays are copied to the host: written (under a temporary name, renamed when complete)
  while the caller goes on, until wait_until_finished()."""
  import orbax.checkpoint as ocp
  options = ocp.CheckpointManagerOptions(
      max_to_keep=keep, keep_time_interval=datetime.timedelta(hours=keep_hours) if keep_hours else None,
      step_name_format=ocp.path.step.standard_name_format(step_prefix=PREFIX),
      enable_async_checkpointing=background)
  return ocp.CheckpointManager(_local(directory), options=options)


def check_space(directory, nbytes):
  """Refuses a save of `nbytes` of arrays into the local `directory` when its disk has less free space (an OSError,
  no space), before Orbax starts: its writer threads meet a full disk with dozens of tracebacks before the error
  reaches the run. (Object stores, gs://, have no disk to fill.)"""
  if "://" in str(directory):
    return
  path = os.path.abspath(directory)
  while not os.path.exists(path):
    path = os.path.dirname(path)
  needed, free = int(nbytes * (1 + SAVE_OVERHEAD)) + SAVE_OVERHEAD_BYTES, shutil.disk_usage(path).free
  if free < needed:
    raise OSError(errno.ENOSPC, f"No space left on device for a checkpoint of {needed / 1e6:.1f} MB: "
                                f"{free / 1e6:.1f} MB free", str(directory))


class _QuietMetadata(logging.Filter):
  """Orbax looks for step metadata inside the item folder too (it is in the step folder) and warns of each look,
  and of an item whose metadata it cannot read (the restore then says so, as one line of ours)."""

  def filter(self, record):
    return not record.getMessage().startswith(("Metadata file does not exist", "Failed to get item metadata"))


# What Orbax leaves behind when one array of a step folder cannot be read: its other reads go on in TensorStore's
# threads after the restore has raised, and each reports, as an exception nobody can catch, that its event loop
# has closed or that it failed too. The restore's own error is the one that counts (a line of the caller's).
_LEFTOVER_READS = ("Event loop is closed", "Encountered error while reading array index")


class DamagedError(Exception):
  """A step folder whose files cannot be read back (not one of another model: that is a ValueError)."""


def _quiet_leftover_reads(hook):
  def quiet(unraisable):
    if not any(text in str(unraisable.exc_value) for text in _LEFTOVER_READS):
      hook(unraisable)
  quiet.leaves_out_leftover_reads = True
  return quiet


def restore(folder, target):
  """The arrays of the step folder `folder`; `target(tree of saved ArrayMetadata) -> tree of
  jax.ShapeDtypeStruct` says where each goes (another topology than the writer's needs one). A folder whose array
  metadata cannot be read raises DamagedError."""
  import orbax.checkpoint as ocp
  if not getattr(sys.unraisablehook, "leaves_out_leftover_reads", False):
    sys.unraisablehook = _quiet_leftover_reads(sys.unraisablehook)
  quiet = _QuietMetadata()
  logging.getLogger("absl").addFilter(quiet)
  try:
    with ocp.StandardCheckpointer() as checkpointer:
      item = os.path.join(_local(folder), ITEM)
      metadata = checkpointer.metadata(item).item_metadata
      if metadata is None:
        raise DamagedError(f"{folder}: the metadata of its arrays in {ITEM}/ cannot be read")
      return checkpointer.restore(item, target(metadata.tree))
  finally:
    logging.getLogger("absl").removeFilter(quiet)


def restore_here(folder):
  """The arrays of the step folder `folder` on this process's first device, whatever devices wrote it."""
  import jax
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  return restore(folder, lambda saved: jax.tree.map(
      lambda meta: jax.ShapeDtypeStruct(meta.shape, meta.dtype, sharding=device), saved))


def averaged_values(folder, count, use_ema=True):
  """The `count` values the EMA averages, as NumPy arrays: the averages by default, else the values themselves
  (the trainable weights, then the BN statistics). A step folder that cannot be read or holds another number of
  them, or an install without JAX to read it, raises ValueError."""
  try:
    import jax  # noqa: F401 -- restore_here's arrays
    import orbax.checkpoint  # noqa: F401 -- restore's reader
  except ModuleNotFoundError as missing:
    raise ValueError(f"{folder} is a checkpoint of --engine=jax (Orbax); reading it needs {missing.name}: "
                     'pip install -e ".[jax]"') from None
  try:
    arrays = restore_here(folder)
  except (ValueError, KeyError, FileNotFoundError, DamagedError) as error:
    raise ValueError(f"Checkpoint {folder} cannot be read: {str(error).splitlines()[0][:200]}") from None
  # The non-trainable floats are the BN statistics (the others: dropout's and stochastic depth's RNG states, which
  # a model built without them lacks).
  statistics = [array for array in arrays["non_trainable"] if np.issubdtype(array.dtype, np.floating)]
  if len(arrays["trainable"]) + len(statistics) != count or len(arrays["shadows"]) != count:
    raise ValueError(f"Checkpoint {folder} holds another number of weights than the model's {count}.")
  return [np.asarray(array) for array in (arrays["shadows"] if use_ema else arrays["trainable"] + statistics)]
