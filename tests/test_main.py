"""main.py's ends: one line and exit 2 for what a user can fix, exit 75 after a stop on a signal; anything else
is a bug and keeps its traceback. (The jobs themselves: test_modes, train/, tpu/; in a process: test_readme.)"""

import pytest

from effnetv2_tf import cli
from effnetv2_tf.tpu.pjrt import TPUSetupError
from effnetv2_tf.train.preemption import Preempted
from tests.helpers import run_main


@pytest.mark.parametrize("error, status, line", [
    (Preempted("SIGTERM", 12), 75, "stopped by SIGTERM at step 12: checkpoint saved; rerun the same command to resume"),
    (ValueError("Unknown hparam 'x'"), 2, "error: Unknown hparam 'x'"),
    (FileNotFoundError("No TFRecord files match d/train-*"), 2, "error: No TFRecord files match d/train-*"),
    (FloatingPointError("Training diverged at step 3"), 2, "error: Training diverged at step 3"),
    (TPUSetupError("--tpu=local, but this machine has no TPU chips"), 2,
     "error: --tpu=local, but this machine has no TPU chips"),
    (OSError(28, "No space left on device"), 2, "error: No space left on device while writing into runs/x: free "
     "space and rerun the same command (complete checkpoints and logs are kept; an unfinished save is removed on "
     "resume)."),
    # Orbax's writers raise a full disk as a ValueError: the machine's line, not the text of a bad setting.
    (ValueError('RESOURCE_EXHAUSTED: Error writing local file "runs/x/checkpoints/ckpt_2.orbax-checkpoint-tmp/'
                'default.orbax-checkpoint-tmp/_sharding": Failed to write 85653 bytes to file 15: No space left on '
                "device [os_error_code='28']"), 2, "error: No space left on device while writing into runs/x: free "
     "space and rerun the same command (complete checkpoints and logs are kept; an unfinished save is removed on "
     "resume)."),
])
def test_each_stop_a_user_can_act_on_is_one_line_and_its_exit_status(monkeypatch, error, status, line):
  def stopped():
    raise error

  monkeypatch.setattr(cli, "_run", stopped)
  done = run_main("--model_dir=runs/x")
  assert done.returncode == status and done.stderr.strip().splitlines() == [line] and not done.stdout


def test_any_other_error_is_a_bug_and_keeps_its_traceback(monkeypatch):
  def broken():
    raise KeyError("stage")

  monkeypatch.setattr(cli, "_run", broken)
  with pytest.raises(KeyError, match="stage"):
    run_main()


def test_process_flags_that_would_stop_jax_in_a_traceback_are_one_line_each(tmp_path):
  """Before JAX starts (and before the check that it is installed): an address without a port, an index outside
  the count, the coordinator's port already listened on."""
  import socket
  with socket.socket() as taken:
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    cases = [
        (["--coordinator_address=127.0.0.1", "--num_processes=2", "--process_id=0"],
         "error: --coordinator_address=127.0.0.1 is not HOST:PORT: give process 0's host and a free port"),
        (["--coordinator_address=127.0.0.1:8476", "--num_processes=2", "--process_id=2"],
         "error: --process_id=2 with --num_processes=2: the processes are numbered 0 to 1, each once"),
        ([f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2", "--process_id=0"],
         f"error: port {port} of --coordinator_address=127.0.0.1:{port} is in use on this host"),
    ]
    for flags, start in cases:
      done = run_main("--engine=jax", f"--model_dir={tmp_path / 'run'}", *flags)
      assert done.returncode == 2 and done.stderr.count("\n") == 1 and done.stderr.startswith(start), done.stderr
  assert not (tmp_path / "run").exists()


def test_a_bucket_without_a_network_is_one_line(tmp_path):
  """TensorFlow's gs:// file system on a machine that cannot resolve Google's hosts (this one: no network but the
  package registries) fails after its retries; the run says so in one line, naming the path."""
  done = run_main(f"--model_dir={tmp_path / 'run'}", "--data_dir=gs://nonexistent-bucket-of-effnetv2-tests/x")
  assert done.returncode == 2 and done.stderr.strip().count("\n") == 0, done.stderr[-2000:]
  assert done.stderr.strip().startswith("error: Error executing an HTTP request: ") and "gs://nonexistent" in done.stderr
  assert "check this machine's network and the bucket's name and access" in done.stderr
  assert not (tmp_path / "run").exists()


def test_a_folder_this_user_cannot_write_is_one_line(tmp_path):
  """/sys refuses new folders even to root: a new model_dir there, and the demo's records inside an existing one."""
  for model_dir in ("/sys/effnetv2_tests_run", "/sys/kernel"):
    done = run_main(f"--model_dir={model_dir}")
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0, done.stderr[-2000:]
    assert done.stderr.strip().startswith(f"error: {model_dir}") and "this user cannot write there" in done.stderr
