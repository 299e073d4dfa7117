"""The JAX engine's checkpoint folders: Orbax step folders checkpoints/ckpt_STEP, written and read in one place.

Written by JaxState (the run's state) through a CheckpointManager, read by it on resume and by weights.runs
(exports and warm starts, on either backend): the step folder's one item (ORBAX_ITEM/), placed as the reader
asks (replicated on the local devices, or on one device).
"""

import datetime
import logging
import os

import orbax.checkpoint as ocp

from effnetv2_tf.run_dir import ORBAX_ITEM, ORBAX_STEP_PREFIX


def _local(path):
  return path if "://" in path else os.path.abspath(path)


def step_manager(directory, keep=None, keep_hours=None, background=False):
  """An Orbax CheckpointManager of the step folders `directory`/ckpt_STEP keeping the newest `keep` and one every
  `keep_hours` (tf.train.CheckpointManager's rules). Its saves are complete when save() returns, or, with
  `background`, once the arrays are copied to the host: written (under a temporary name, renamed when complete)
  while the caller goes on, until wait_until_finished()."""
  options = ocp.CheckpointManagerOptions(
      max_to_keep=keep, keep_time_interval=datetime.timedelta(hours=keep_hours) if keep_hours else None,
      step_name_format=ocp.path.step.standard_name_format(step_prefix=ORBAX_STEP_PREFIX),
      enable_async_checkpointing=background)
  return ocp.CheckpointManager(_local(directory), options=options)


class _QuietMetadata(logging.Filter):
  """Orbax looks for step metadata inside the item folder too (it is in the step folder) and warns of each look."""

  def filter(self, record):
    return not record.getMessage().startswith("Metadata file does not exist")


def restore(folder, target):
  """The arrays of the step folder `folder`; `target(tree of saved ArrayMetadata) -> tree of
  jax.ShapeDtypeStruct` says where each goes (another topology than the writer's needs one)."""
  quiet = _QuietMetadata()
  logging.getLogger("absl").addFilter(quiet)
  try:
    with ocp.StandardCheckpointer() as checkpointer:
      item = os.path.join(_local(folder), ORBAX_ITEM)
      return checkpointer.restore(item, target(checkpointer.metadata(item).item_metadata.tree))
  finally:
    logging.getLogger("absl").removeFilter(quiet)
