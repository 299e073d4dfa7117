"""Faults a long run meets, reproduced: a second run on the same folder, a SIGKILL inside a save, a rerun with
other settings, a stop between a stage's checkpoint and its eval, a divergence, broken data, a full disk.
Nothing of a run is lost, the rerun resumes, and each refusal is one line with exit 2. The runs that a fault
meets from outside (another process, a kill) have a process of their own; the reruns run in this one."""

import json
import re
import subprocess
import time

import numpy as np
import pytest
import tensorflow as tf
import yaml

from effnetv2_tf.checkpoints import tf_prefixes
from effnetv2_tf.train.divergence import VALUE_BOUND
from tests.helpers import ROOT, TWO_STAGES, copy_run, main_command, main_py, run_main, snapshot

pytestmark = pytest.mark.one_stack  # platform-independent: CI's TPU-stack half leaves them to the CPU half


def _train(model_dir, data_dir, hparam_str=TWO_STAGES, *extra):
  return run_main("--mode=train_and_eval", f"--model_dir={model_dir}", f"--data_dir={data_dir}",
                  f"--hparam_str={hparam_str}", *extra)


@pytest.fixture(scope="module")
def two_stages_run(demo_records, tmp_path_factory):
  """A finished TWO_STAGES run (12 steps, an eval after each stage), shared: tests change copies of it."""
  run = tmp_path_factory.mktemp("two_stages") / "run"
  done = _train(run, demo_records)
  assert done.returncode == 0, done.stderr[-3000:]
  return run


def _rows(path):
  return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _last_line(done):
  return done.stderr.strip().splitlines()[-1]


def _assert_refused_leaving_it_as_it_was(run, data_dir, line, hparam_str=TWO_STAGES):
  """Reruns `run` on `data_dir`: exit 2, `line` last, and nothing in the run changed."""
  before = snapshot(run)
  refused = _train(run, data_dir, hparam_str)
  assert refused.returncode == 2 and _last_line(refused) == line, refused.stderr[-2000:]
  assert snapshot(run) == before


@pytest.mark.e2e
def test_a_second_run_on_the_same_folder_is_refused_and_the_first_loses_nothing(demo_records, tmp_path):
  slow = TWO_STAGES.replace("data.num_train_examples=96", "data.num_train_examples=400")  # 50 steps
  first = subprocess.Popen(main_command("--mode=train", f"--model_dir={tmp_path}", f"--data_dir={demo_records}",
                                        f"--hparam_str={slow}"), cwd=ROOT, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 240  # the first holds the folder once it wrote config.yaml, before compiling its step:
  while time.time() < deadline and not (tmp_path / "config.yaml").exists():  # the second meets it, however slow
    time.sleep(0.1)  # its start on a loaded machine (after the first's history began, 50 fast steps could end first)
  second = _train(tmp_path, demo_records, slow)
  _, first_stderr = first.communicate(timeout=600)
  assert first.returncode == 0, first_stderr[-3000:]
  assert second.returncode == 2
  assert _last_line(second).startswith(f"error: {tmp_path} is in use by another run (pid {first.pid} on ")
  assert [row["step"] for row in _rows(tmp_path / "history.jsonl")] == list(range(1, 51))
  assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-50")


@pytest.mark.e2e
def test_a_sigkill_while_a_checkpoint_is_written_loses_nothing_saved_before(demo_records, tmp_path):
  """SIGKILL the moment TensorFlow starts writing ckpt-6 (its ckpt-6_temp/ appears): ckpt-3 survives, the
  rerun removes the half-written folder and resumes from ckpt-3 to the end."""
  # A full-width model, so that a save takes long enough (tens of MB) to be caught inside.
  hparam_str = TWO_STAGES + ",model.width=1.0,runtime.checkpoint_steps=3"
  run = subprocess.Popen(main_command("--mode=train", f"--model_dir={tmp_path}", f"--data_dir={demo_records}",
                                      f"--hparam_str={hparam_str}"), cwd=ROOT, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
  leftover = tmp_path / "checkpoints" / "ckpt-6_temp"
  deadline = time.time() + 300
  while time.time() < deadline and run.poll() is None and not leftover.exists():
    time.sleep(0.001)
  run.kill()
  run.communicate(timeout=60)
  assert leftover.exists(), "the save of ckpt-6 was not caught in the middle"
  assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-3")
  again = _train(tmp_path, demo_records, hparam_str)
  assert again.returncode == 0, again.stderr[-3000:]
  assert "removed ckpt-6_temp" in again.stdout and not leftover.exists()
  assert "steps 3-6" in again.stdout  # resumed from ckpt-3
  assert [row["step"] for row in _rows(tmp_path / "history.jsonl")] == list(range(1, 13))
  assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-12")


def test_other_settings_on_resume_are_refused_unless_asked_for(two_stages_run, demo_records, tmp_path):
  copy_run(two_stages_run, tmp_path)
  history = (tmp_path / "history.jsonl").read_bytes()
  other = _train(tmp_path, demo_records, TWO_STAGES + ",train.batch_size=16,train.seed=3")
  assert other.returncode == 2
  assert "holds ckpt-12 of a run with other settings (train.batch_size 8 -> 16, train.seed 0 -> 3)" in _last_line(other)
  assert (tmp_path / "history.jsonl").read_bytes() == history
  asked = _train(tmp_path, demo_records, TWO_STAGES + ",train.epochs=2.0", "--continue_with_new_settings")
  assert asked.returncode == 0, asked.stderr[-3000:]
  assert [row["step"] for row in _rows(tmp_path / "history.jsonl")][-1] == 24  # went on to the new end


def test_a_damaged_newest_checkpoint_is_set_aside_and_the_run_goes_on_from_the_older(two_stages_run, demo_records,
                                                                                      tmp_path):
  """ckpt-12's data cut to 1,000 bytes (a disk error, a copy cut short): eval and export say so and take ckpt-6,
  moving nothing; the rerun moves it into damaged/ with one line, resumes from ckpt-6 and trains stage 2 again;
  nothing is deleted."""
  copy_run(two_stages_run, tmp_path)
  (data,) = (tmp_path / "checkpoints").glob("ckpt-12.data-*")
  size = data.stat().st_size
  with open(data, "r+b") as f:
    f.truncate(1000)
  evaluated = run_main("--mode=eval", f"--model_dir={tmp_path}", f"--data_dir={demo_records}")
  exported = run_main("--mode=export", f"--model_dir={tmp_path}", f"--export_dir={tmp_path.parent / 'export'}")
  for done, doing in [(evaluated, "evaluating"), (exported, "exporting")]:
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"): {doing} ckpt-6, the newest that can" in done.stdout and "ckpt-12 cannot be read back (" in done.stdout
  assert "step 6: top-1" in evaluated.stdout and "exported step 6" in exported.stdout
  assert not (tmp_path / "damaged").exists()
  resumed = _train(tmp_path, demo_records)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  (line,) = [line for line in resumed.stdout.splitlines() if "cannot be read back" in line]
  assert line.startswith("ckpt-12 cannot be read back (") and line.endswith("; resuming from ckpt-6")
  (moved,) = (tmp_path / "damaged").iterdir()
  assert sorted(p.name for p in moved.iterdir()) == sorted(p.name for p in (two_stages_run / "checkpoints").glob(
      "ckpt-12.*")) and (moved / data.name).stat().st_size == 1000 < size
  assert [row["step"] for row in _rows(tmp_path / "history.jsonl")][-1] == 12
  assert (tmp_path / "checkpoints" / "ckpt-12.index").exists()  # trained again


def test_a_stage_eval_lost_to_a_kill_is_made_on_resume(two_stages_run, demo_records, tmp_path):
  copy_run(two_stages_run, tmp_path)
  assert [e["step"] for e in _rows(tmp_path / "eval.jsonl")] == [6, 12]
  # The state of a run killed after stage 1's checkpoint and before its eval.
  checkpoints = tmp_path / "checkpoints"
  for path in checkpoints.glob("ckpt-12.*"):
    path.unlink()
  tf.compat.v1.train.update_checkpoint_state(str(checkpoints), str(checkpoints / "ckpt-6"))
  (tmp_path / "eval.jsonl").write_text("")
  resumed = _train(tmp_path, demo_records)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert [e["step"] for e in _rows(tmp_path / "eval.jsonl")] == [6, 12]


def _checkpoint_files(run):
  return snapshot(run / "checkpoints") | {"checkpoint": None}  # the state file aside


def test_a_state_file_naming_a_missing_checkpoint_resumes_from_the_newest_complete_one(two_stages_run,
                                                                                       demo_records, tmp_path):
  """A run folder copied in part, or a state file from elsewhere: it names ckpt-99, or it is missing. The
  rerun goes on from the newest complete checkpoint (here the finished run's ckpt-12) and loses none."""
  for case, damage in (("named", lambda state: state.write_text(re.sub(
      r'(?m)^model_checkpoint_path: .*$', 'model_checkpoint_path: "ckpt-99"', state.read_text()))),
                       ("missing", lambda state: state.unlink())):
    run = copy_run(two_stages_run, tmp_path / case)
    before, history = _checkpoint_files(run), (run / "history.jsonl").read_bytes()
    damage(run / "checkpoints" / "checkpoint")
    again = _train(run, demo_records)
    assert again.returncode == 0, again.stderr[-3000:]
    said = "names ckpt-99, which is not there" if case == "named" else "is missing"
    assert (f"{run / 'checkpoints'}/checkpoint {said}: resuming from ckpt-12, the newest complete checkpoint (kept: "
            "ckpt-6, ckpt-12)") in again.stdout
    assert _checkpoint_files(run) == before and (run / "history.jsonl").read_bytes() == history
    assert tf.train.latest_checkpoint(str(run / "checkpoints")).endswith("ckpt-12")

  # The latest checkpoint deleted by hand, to go back: the run goes on from ckpt-6 to its end.
  run = copy_run(two_stages_run, tmp_path / "rolled_back")
  for path in (run / "checkpoints").glob("ckpt-12.*"):
    path.unlink()
  again = _train(run, demo_records)
  assert again.returncode == 0, again.stderr[-3000:]
  assert "names ckpt-12, which is not there: resuming from ckpt-6" in again.stdout and "steps 6-12" in again.stdout
  assert [row["step"] for row in _rows(run / "history.jsonl")] == list(range(1, 13))


def test_a_state_file_naming_an_older_checkpoint_than_the_folder_holds_is_refused(two_stages_run, demo_records,
                                                                                  tmp_path):
  run = copy_run(two_stages_run, tmp_path / "run")
  tf.compat.v1.train.update_checkpoint_state(str(run / "checkpoints"), str(run / "checkpoints" / "ckpt-6"))
  _assert_refused_leaving_it_as_it_was(run, demo_records, (
      f"error: {run / 'checkpoints'}/checkpoint names ckpt-6, but the folder holds newer checkpoints (ckpt-12), which "
      "a run from it would overwrite: move them out of the folder to go on from ckpt-6, or delete the state file to "
      "go on from the newest."))


@pytest.mark.parametrize("damage, problem", [
    (lambda text: text[:text.index("num_classes")] + 'num_classes: "5\n', "not YAML at line "),  # cut short
    (lambda text: "- model\n- train\n", "(a list, not the settings of a run)"),
    (lambda text: text[:text.index("\ntrain:") + 1], ": train is missing (a file cut short?);"),  # cut at a group
    (lambda text: "".join(text.splitlines(keepends=True)[:-1]), " is missing (a file cut short?);"),  # at a line
    (lambda text: text.replace("num_classes: 5", "num_classes: five"), ": model.num_classes is 'five', not a whole number;"),
])
def test_a_damaged_config_yaml_is_one_line_naming_it_in_every_job(two_stages_run, demo_records, tmp_path, damage,
                                                                  problem):
  run = copy_run(two_stages_run, tmp_path / "run")
  config = run / "config.yaml"
  config.write_text(damage(config.read_text()))
  before = snapshot(run)
  for job in (_train(run, demo_records), run_main("--mode=eval", f"--model_dir={run}", f"--data_dir={demo_records}"),
              run_main("--mode=export", f"--model_dir={run}", f"--export_dir={tmp_path / 'export'}")):
    assert job.returncode == 2, job.stderr[-2000:]
    line = _last_line(job)
    assert line.startswith(f"error: {config} is damaged") and problem in line, line
    assert line.endswith("restore it from a copy of the run, or move it away to go on with the settings saved in "
                         "ckpt-12.")
  assert snapshot(run) == before and not (tmp_path / "export").exists()


def test_without_config_yaml_the_settings_in_the_checkpoint_stand_in_for_it_in_every_job(two_stages_run, demo_records,
                                                                                          tmp_path):
  run = copy_run(two_stages_run, tmp_path / "run")
  written = (run / "config.yaml").read_text()
  (run / "config.yaml").unlink()
  note = f"note: {run / 'config.yaml'} is missing: the settings saved in ckpt-12 stand in for it"
  _assert_refused_leaving_it_as_it_was(run, demo_records, (
      f"error: {run} holds ckpt-12 of a run with other settings (train.batch_size 8 -> 16): rerun with the run's "
      "settings to resume it, use another --model_dir, or pass --continue_with_new_settings to go on from this "
      "checkpoint with the new ones."), TWO_STAGES + ",train.batch_size=16")
  evaluated = run_main("--mode=eval", f"--model_dir={run}", f"--data_dir={demo_records}")
  assert evaluated.returncode == 0 and note in evaluated.stdout, evaluated.stderr[-2000:]
  assert json.loads((run / "eval.jsonl").read_text().splitlines()[-1])["step"] == 12
  resumed = _train(run, demo_records)
  assert resumed.returncode == 0 and note in resumed.stdout, resumed.stderr[-2000:]
  assert (run / "config.yaml").read_text() == written  # rebuilt as it was


def test_checkpoints_of_a_version_without_settings_in_them_and_no_config_yaml_are_refused_unless_asked_for(
    two_stages_run, demo_records, tmp_path, monkeypatch):
  """Without the settings the checkpoints were trained with, other settings cannot be told apart."""
  monkeypatch.setattr(tf_prefixes, "SETTINGS", "settings_of_a_later_version")  # what an older one reads
  run = copy_run(two_stages_run, tmp_path / "run")
  (run / "config.yaml").unlink()
  _assert_refused_leaving_it_as_it_was(run, demo_records, (
      f"error: {run} holds checkpoints (ckpt-12) but no config.yaml, the settings they were trained with: restore it "
      "from a copy of the run, or pass --continue_with_new_settings to go on from ckpt-12 with this command's."),
      TWO_STAGES + ",train.batch_size=16")
  asked = _train(run, demo_records, TWO_STAGES + ",train.batch_size=16", "--continue_with_new_settings")
  assert asked.returncode == 0, asked.stderr[-3000:]
  assert yaml.safe_load((run / "config.yaml").read_text())["train"]["batch_size"] == 16  # the settings it went on with


def test_resuming_on_data_that_names_other_classes_is_refused_unless_asked_for(two_stages_run, demo_records,
                                                                              tmp_path):
  import shutil
  run = copy_run(two_stages_run, tmp_path / "run")
  relabelled = shutil.copytree(demo_records, tmp_path / "relabelled")
  (relabelled / "labels.txt").write_text("a\nb\nc\nd\ne\n")
  _assert_refused_leaving_it_as_it_was(run, relabelled, (
      f"error: {relabelled} names other classes (a, b, c, d, e) than the run {run} was trained on (daisy, dandelion, "
      "rose, sunflower, tulip): give data of the run's classes, or pass --continue_with_new_settings to go on with "
      "the data's."))


def _largest_saved_value(prefix):
  """The largest absolute value of any floating-point tensor checkpoint `prefix` holds (NaN if one holds NaN)."""
  reader = tf.train.load_checkpoint(str(prefix))
  values = [reader.get_tensor(name) for name in reader.get_variable_to_shape_map()]
  return max(float(np.abs(value).max()) for value in values if np.issubdtype(np.asarray(value).dtype, np.floating)
             and np.size(value))


def test_a_diverging_run_keeps_only_healthy_checkpoints_and_its_advice_followed_as_printed_finishes(demo_records,
                                                                                                    tmp_path):
  # Momentum at lr 3.1 (100 per 256 images, batch 8) from the first step: the loss grows by orders of magnitude
  # within a few steps; a tenth of it trains.
  diverging = TWO_STAGES + ",runtime.checkpoint_steps=1,train.optimizer=momentum,train.warmup_epochs=0.0,train.lr_base=100.0"
  done = _train(tmp_path, demo_records, diverging)
  assert done.returncode == 2, done.stderr[-3000:]
  advice = re.fullmatch(
      r"error: Training diverged at step (\d+): .+\. Nothing of it was saved, and (ckpt-\d+(?:, ckpt-\d+)*), saved "
      r"since the loss was last healthy, (?:was|were) moved to (\S+); to go on from (ckpt-\d+), the last healthy "
      r"checkpoint, rerun with a lower learning rate \(train\.lr_base=(\S+), a tenth, or train\.gradient_clip\) "
      r"and --continue_with_new_settings\.", _last_line(done))
  assert advice, _last_line(done)
  diverged_at, set_aside, folder, healthy, lower = advice.groups()
  assert float(lower) == 10.0
  for name in set_aside.split(", "):
    assert int(healthy.split("-")[1]) < int(name.split("-")[1]) < int(diverged_at)
    assert (tmp_path / "diverged" / folder.rsplit("/", 1)[1] / f"{name}.index").exists()
  left = tf.train.get_checkpoint_state(str(tmp_path / "checkpoints"))
  assert left.model_checkpoint_path.endswith(healthy)
  for prefix in left.all_model_checkpoint_paths:  # weights, BN statistics, EMA and optimizer slots
    assert _largest_saved_value(tmp_path / "checkpoints" / prefix) < VALUE_BOUND, prefix

  followed = _train(tmp_path, demo_records, diverging.replace("train.lr_base=100.0", f"train.lr_base={lower}"),
                    "--continue_with_new_settings")
  assert followed.returncode == 0, followed.stderr[-3000:]
  assert ("the learning rate's scale changed (train.lr_base 100.0 -> 10.0): the optimizer's momenta, steps of the old "
          "rate, start again from 0") in followed.stdout
  assert [row["step"] for row in _rows(tmp_path / "history.jsonl")] == list(range(1, 13))


def test_broken_data_stops_training_with_one_line(demo_records, tmp_path):
  data = tmp_path / "data"
  data.mkdir()
  for path in demo_records.glob("val-*"):
    (data / path.name).symlink_to(path)
  (data / "train-00000-of-00001").write_bytes(b"this is not a TFRecord file at all, but some text")
  done = _train(tmp_path / "run", data)
  assert done.returncode == 2, done.stderr[-3000:]
  assert _last_line(done) == f"error: No record of {data / 'train-*'} could be read (are they TFRecord files?)."


@pytest.mark.e2e
def test_a_full_disk_is_one_line_keeps_what_was_saved_and_the_rerun_resumes(demo_records, tmp_path):
  import shutil
  disk = tmp_path / "disk"
  disk.mkdir()
  mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)], capture_output=True)
  if mounted.returncode != 0:
    pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()[:100]}")
  try:  # a checkpoint of this model is ~2 MB: the second save fills the disk; in a process of its own, whose
    # open files (TensorBoard's event file among them) end with it, so that the disk can be unmounted
    done = main_py("--mode=train_and_eval", f"--model_dir={disk / 'run'}", f"--data_dir={demo_records}",
                   f"--hparam_str={TWO_STAGES},runtime.checkpoint_steps=2")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert _last_line(done).startswith(f"error: No space left on device while writing into {disk / 'run'}")
    assert not list((disk / "run").glob("*.tmp-*"))  # no half-written temporary file
    shutil.copytree(disk / "run", tmp_path / "freed")  # the run moved to a disk with space
  finally:
    subprocess.run(["umount", str(disk)], check=True)
  assert tf.train.latest_checkpoint(str(tmp_path / "freed" / "checkpoints")).endswith("ckpt-2")
  assert [row["step"] for row in _rows(tmp_path / "freed" / "history.jsonl")][:2] == [1, 2]
  resumed = _train(tmp_path / "freed", demo_records, TWO_STAGES + ",runtime.checkpoint_steps=2")
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert "removed ckpt-4_temp" in resumed.stdout
  assert [row["step"] for row in _rows(tmp_path / "freed" / "history.jsonl")] == list(range(1, 13))
