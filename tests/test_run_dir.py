import gc
import os
import pathlib
import sys
import time
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf

from effnetv2_tf.checkpoints import tf_prefixes
from effnetv2_tf.run_dir import RunDir, RunDirBusyError, config_text


def test_a_folder_the_hold_created_and_left_empty_is_removed_and_nothing_else_is(tmp_path):
  with RunDir(tmp_path / "refused").exclusive():  # a run refused before it wrote anything
    assert (tmp_path / "refused" / ".lock").exists()
  assert not (tmp_path / "refused").exists()

  with RunDir(tmp_path / "ran").exclusive():
    (tmp_path / "ran" / "config.yaml").write_text("model: {}\n")
  assert sorted(path.name for path in (tmp_path / "ran").iterdir()) == [".lock", "config.yaml"]

  (tmp_path / "yours").mkdir()  # made by the user: kept, even empty
  with RunDir(tmp_path / "yours").exclusive():
    pass
  assert (tmp_path / "yours").is_dir()


def test_a_held_folder_is_refused_to_a_second_hold_and_survives_it(tmp_path):
  with RunDir(tmp_path / "run").exclusive():
    with pytest.raises(RunDirBusyError, match="is in use by another run"), RunDir(tmp_path / "run").exclusive():
      pass
    assert (tmp_path / "run" / ".lock").exists()


def test_only_checkpoints_with_their_index_and_every_data_shard_are_complete(tmp_path):
  run = RunDir(tmp_path)
  folder = tmp_path / "checkpoints"
  folder.mkdir()
  for name in ("ckpt-3.index", "ckpt-3.data-00000-of-00001", "ckpt-5.index",  # ckpt-5: no data
               "ckpt-7.index", "ckpt-7.data-00001-of-00002", "ckpt-10.data-00000-of-00001",  # 1 of 2; no index
               "ckpt-20.index", "ckpt-20.data-00000-of-00002", "ckpt-20.data-00001-of-00002"):
    (folder / name).write_bytes(b"")
  assert run.complete_checkpoints() == [str(folder / "ckpt-3"), str(folder / "ckpt-20")]  # by step, not by name
  (folder / "checkpoint").write_text('model_checkpoint_path: "ckpt-99"\n')
  assert run.latest_checkpoint() == str(folder / "ckpt-20")
  assert RunDir(tmp_path / "nothing").latest_checkpoint() is None


def test_checkpoints_set_aside_leave_the_resume_path_whole_and_the_others_where_they_were(tmp_path):
  run = RunDir(tmp_path)
  saver = tf.train.CheckpointManager(tf.train.Checkpoint(v=tf.Variable(1.0)), run.checkpoints, max_to_keep=5,
                                     checkpoint_name="ckpt")
  prefixes = [saver.save(checkpoint_number=step) for step in (3, 30, 300, 3000)]
  folder = run.set_aside(prefixes[2:])
  assert sorted(p.name for p in (tmp_path / "diverged").glob("*/*")) == [
      "ckpt-300.data-00000-of-00001", "ckpt-300.index", "ckpt-3000.data-00000-of-00001", "ckpt-3000.index"]
  assert folder == str(next((tmp_path / "diverged").iterdir()))
  assert run.complete_checkpoints() == prefixes[:2]
  state = tf.train.get_checkpoint_state(run.checkpoints)
  assert state.model_checkpoint_path.endswith("ckpt-30") and len(state.all_model_checkpoint_paths) == 2


def test_the_settings_a_checkpoint_carries_are_read_back_and_one_without_them_has_none(tmp_path):
  run = RunDir(tmp_path)
  variable = tf.Variable(1.0)
  older = tf.train.Checkpoint(v=variable).write(str(tmp_path / "older"))
  settings = tf.Variable(config_text({"model": {"name": "efficientnetv2-s", "num_classes": 5}}))
  newer = tf.train.Checkpoint(v=variable, **{tf_prefixes.SETTINGS: settings}).write(str(tmp_path / "newer"))
  assert run.checkpoint_settings(older) is None
  assert run.checkpoint_settings(newer) == {"model": {"name": "efficientnetv2-s", "num_classes": 5}}
  (tmp_path / "damaged.index").write_bytes(b"not a checkpoint index")
  assert run.checkpoint_settings(str(tmp_path / "damaged")) is None


def test_a_save_that_the_disk_cannot_hold_is_refused_before_orbax_writes(tmp_path):
  """The JAX engine's check before each save, on this machine's real disk: arrays beyond its free space (with
  Orbax's overhead) are an OSError of no space naming the folder, before anything is written; a save that fits,
  into a folder not made yet, and one to a bucket pass."""
  import errno
  import shutil
  from effnetv2_tf.checkpoints import orbax_steps
  from effnetv2_tf.os_errors import os_error_line
  folder = tmp_path / "run" / "checkpoints"
  with pytest.raises(OSError) as refused:
    orbax_steps.check_space(folder, shutil.disk_usage(tmp_path).free)
  assert refused.value.errno == errno.ENOSPC and refused.value.filename == str(folder)
  assert os_error_line(refused.value, "runs/x").startswith("No space left on device while writing into runs/x: ")
  orbax_steps.check_space(folder, 1000)
  orbax_steps.check_space("gs://bucket/run/checkpoints", 10 ** 15)
  assert not (tmp_path / "run").exists()


@pytest.mark.jax
def test_the_jax_engines_orbax_step_folders_complete_settings_and_a_save_cut_short(tmp_path):
  """Orbax writes the step folders (the JAX engine's manager); a save whose final rename fails leaves Orbax's own
  temporary folder, which is not a checkpoint and is removed on resume; the settings come back from the metadata."""
  ocp = pytest.importorskip("orbax.checkpoint", reason="the JAX route is not installed: pip install -e \".[jax]\"")
  from effnetv2_tf.checkpoints.orbax_steps import step_manager
  run = RunDir(tmp_path / "run")
  manager = step_manager(run.checkpoints, keep=3)
  manager.save(3, args=ocp.args.StandardSave({"a": np.ones(3)}), custom_metadata={"settings": "model: {name: x}\n"})

  def refuse(*args, **kwargs):
    raise OSError("No space left on device")

  with mock.patch.object(pathlib.Path, "rename", refuse), mock.patch("os.rename", refuse):
    with pytest.raises(OSError):
      manager.save(6, args=ocp.args.StandardSave({"a": np.ones(3)}))
  assert sorted(os.listdir(run.checkpoints)) == ["ckpt_3", "ckpt_6.orbax-checkpoint-tmp"]
  assert run.complete_checkpoints() == [run.latest_checkpoint()] == [os.path.join(run.checkpoints, "ckpt_3")]
  assert run.checkpoint_settings(run.latest_checkpoint()) == {"model": {"name": "x"}}
  assert run.remove_unfinished_saves() == ["ckpt_6.orbax-checkpoint-tmp"]
  assert os.listdir(run.checkpoints) == ["ckpt_3"]
  # A step folder that cannot be read back goes aside whole (the resume's damaged/), the older one stays.
  manager = step_manager(run.checkpoints, keep=3)
  manager.save(9, args=ocp.args.StandardSave({"a": np.ones(3)}))
  manager.wait_until_finished()
  files = sorted(str(path.relative_to(tmp_path / "run" / "checkpoints")) for path in
                 (tmp_path / "run" / "checkpoints" / "ckpt_9").rglob("*"))
  folder = pathlib.Path(run.set_aside([os.path.join(run.checkpoints, "ckpt_9")], into="damaged"))
  assert sorted(str(path.relative_to(folder)) for path in (folder / "ckpt_9").rglob("*")) == files and files
  assert run.complete_checkpoints() == [os.path.join(run.checkpoints, "ckpt_3")]
  # A step folder without its metadata (a copy cut short) would stop Orbax saving at its step: it goes aside too.
  manager = step_manager(run.checkpoints, keep=3)
  manager.save(12, args=ocp.args.StandardSave({"a": np.ones(3)}))
  manager.wait_until_finished()
  os.remove(os.path.join(run.checkpoints, "ckpt_12", "_CHECKPOINT_METADATA"))
  names, aside = run.set_aside_incomplete()
  assert names == ["ckpt_12"] and (pathlib.Path(aside) / "ckpt_12" / "default").is_dir()
  assert os.listdir(run.checkpoints) == ["ckpt_3"] and run.set_aside_incomplete() == ([], None)
  assert step_manager(run.checkpoints, keep=3).save(12, args=ocp.args.StandardSave({"a": np.ones(3)}))


def test_a_tensorflow_file_systems_refusal_names_the_path_it_refused():
  """TensorFlow's file systems say "PATH; REASON" (here /sys, which refuses new files even to root): the line names
  that path, not the command's model_dir."""
  from effnetv2_tf.os_errors import os_error_line
  with pytest.raises(tf.errors.OpError) as refused:
    tf.io.gfile.makedirs("/sys/effnetv2_tests_export/classification")
  assert os_error_line(refused.value, "runs/x") == (
      "/sys/effnetv2_tests_export: Operation not permitted: this user cannot write there (a read-only file system, or "
      "another user's folder): choose another folder, or change its permissions, and rerun.")


@pytest.mark.jax
def test_a_jax_step_folder_that_does_not_read_back_raises_one_error_and_orbax_leaves_nothing_on_the_console(
    tmp_path, monkeypatch):
  """Files cut short: the read's error, and Orbax's other reads (still going in TensorStore's threads after it
  raised) report nothing more; files lost with the arrays' metadata: DamagedError, not an AttributeError."""
  ocp = pytest.importorskip("orbax.checkpoint", reason="the JAX route is not installed: pip install -e \".[jax]\"")
  import jax
  from effnetv2_tf.checkpoints import orbax_steps
  reported = []
  monkeypatch.setattr(sys, "unraisablehook", reported.append)  # what would reach the console
  arrays = {f"a{i}": np.random.default_rng(i).normal(size=(64, 64)).astype(np.float32) for i in range(24)}
  manager = orbax_steps.step_manager(str(tmp_path), keep=5)
  for step in (1, 2):
    manager.save(step, args=ocp.args.StandardSave(arrays))
  manager.wait_until_finished()
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])

  def target(saved):
    return jax.tree.map(lambda meta: jax.ShapeDtypeStruct(meta.shape, meta.dtype, sharding=device), saved)

  cut = sorted((tmp_path / "ckpt_1").rglob("d/*"))
  for path in cut:
    os.truncate(path, min(path.stat().st_size, 1000))
  with pytest.raises(Exception, match="Encountered error while reading array index") as raised:
    orbax_steps.restore(str(tmp_path / "ckpt_1"), target)
  assert not isinstance(raised.value, (TypeError, AttributeError))
  for path in sorted((tmp_path / "ckpt_2").rglob("d/*")):
    path.unlink()
  with pytest.raises(orbax_steps.DamagedError, match="the metadata of its arrays in default/ cannot be read"):
    orbax_steps.restore(str(tmp_path / "ckpt_2"), target)
  time.sleep(2)  # Orbax's leftover reads finish
  gc.collect()
  assert reported == [], [str(unraisable.exc_value)[:200] for unraisable in reported]
