"""The JAX engine over several processes, as the hosts of a TPU slice run it: 2 processes x 4 virtual CPU devices
on this machine, joined through a coordinator on 127.0.0.1 (gloo collectives), each reading its shard of the data.

Each run is a process of its own (tests/train/run_trainer.py, or main.py for the refusals): JAX joins the others
before it touches a device.
"""

import json
import os
import signal
import socket
import subprocess
import time

import numpy as np
import pytest

from tests.helpers import ROOT, TINY_TRAINER, main_command, main_py, result_of, run_trainer, trainer_command

pytest.importorskip("jax", reason="the JAX route is not installed: pip install -e \".[jax]\"")
pytestmark = pytest.mark.jax

FOUR_DEVICES = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
EIGHT_DEVICES = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
# With run_trainer's TINY_TRAINER: 16 steps of 8 images in 2 stages (8 at 36 px, 8 at 40 px), 4 rows of each batch
# from each process, 2 steps a host loop; eval batches of 16 (8 a process, one a device). The TPU-shaped path but
# for bfloat16 (whose rounding tells the collectives of one process from those of two; test_doctor's JAX step runs
# it on 2 processes): mixup and cutmix, dropout and stochastic depth (their RNG states travel in the checkpoint), a
# stage switch, the padded eval, warm-started from a TF engine's run (the fixture's train.ft_init_ckpt). No host
# loop cut to the progress line's seconds: one process would cut its own (several processes do not).
TPU_SHAPED = ("data.num_train_examples=128,eval.batch_size=16,runtime.steps_per_loop=2,runtime.progress_seconds=0.0,"
              "runtime.checkpoint_steps=100,mixing.mixup_max=0.4,mixing.cutmix_max=0.4,regularization.dropout_max=0.3,"
              "regularization.survival_prob=0.8")


def _free_port():
  with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    return probe.getsockname()[1]


def _start(command_of, count=2, port=None):
  """`count` processes of one run: command_of(process flags) -> the command line; each with 4 devices."""
  port = port or _free_port()
  return [subprocess.Popen(command_of(f"--coordinator_address=127.0.0.1:{port}", f"--num_processes={count}",
                                      f"--process_id={index}"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=FOUR_DEVICES)
          for index in range(count)]


def _ended(processes, timeout=400):
  """[(exit status, stdout, stderr)] of `processes`, once all have ended."""
  outputs = [process.communicate(timeout=timeout) for process in processes]
  return [(process.returncode, out, err) for process, (out, err) in zip(processes, outputs)]


def _signalled(processes, model_dir, step, signum):
  """`processes`' ends after `signum` went to each once history.jsonl has a row at `step` or later."""
  history = model_dir / "history.jsonl"
  deadline = time.time() + 400
  while time.time() < deadline and not (history.exists() and
                                        json.loads(history.read_text().splitlines()[-1])["step"] >= step):
    assert all(process.poll() is None for process in processes), "a process ended before it was signalled"
    time.sleep(0.02)
  for process in processes:
    process.send_signal(signum)
  return _ended(processes)


def _weights(path):
  saved = np.load(path)
  return {key: saved[key] for key in saved.files if not key.startswith("start_")}


def _rng_states(step_folder):
  """The RNG states of dropout and stochastic depth in a JAX step folder: its non-trainable arrays but the floats
  (the BN statistics)."""
  from effnetv2_tf.checkpoints import orbax_steps
  arrays = orbax_steps.restore_here(str(step_folder))
  return [np.asarray(array) for array in arrays["non_trainable"] if not np.issubdtype(array.dtype, np.floating)]


@pytest.fixture(scope="module")
def tpu_shaped(demo_records, finished_run):
  """run_trainer's arguments for a run of the TPU-shaped path warm-started from the TF engine's finished run."""
  return "--engine=jax", f"--hparam_str={TPU_SHAPED},train.ft_init_ckpt={finished_run}"


@pytest.fixture(scope="module")
def two_process_run(demo_records, tpu_shaped, tmp_path_factory):
  """(folder, [(status, stdout, stderr)] of both processes, weights file) of the run trained by 2 processes."""
  folder = tmp_path_factory.mktemp("two_processes")
  ended = _ended(_start(lambda *flags: trainer_command(folder / "run", demo_records, *tpu_shaped, "--finish",
                                                        f"--weights_out={folder / 'weights.npz'}", *flags)))
  for status, _, err in ended:
    assert status == 0, err[-3000:]
  return folder / "run", ended, folder / "weights.npz"


@pytest.mark.e2e  # about 2 minutes: the 2 processes' run (the fixture's), then one process on their batches
def test_two_processes_train_what_one_process_trains_on_their_batches(two_process_run, demo_records, tpu_shaped,
                                                                      finished_run, tmp_path):
  """Process 0 and 1 each feed 4 devices their rows of each batch; one process with 8 devices fed the same global
  batches (both input pipelines' rows) trains the same weights, BN statistics, RNG states and EMA and evaluates the
  same (each eval example once). Only process 0 wrote the run folder's files. The RNG states travel through the
  compiled step: stage 2's steps moved every one of them from where stage 1 saved them (no mask frozen into it)."""
  run, ended, weights = two_process_run
  assert f"fine-tuning from {finished_run}/checkpoints/ckpt-2: our checkpoint, EMA weights" in ended[0][1]
  one = run_trainer(tmp_path / "one", demo_records, *tpu_shaped, "--input_pipelines=2", "--finish",
                    f"--weights_out={tmp_path / 'one.npz'}", env=EIGHT_DEVICES)
  results = [result_of(out) for _, out, _ in ended]
  for result in results:
    assert result["replicas"] == 8 and result["step"] == 16
    np.testing.assert_allclose(result["losses"], one["losses"], rtol=1e-5)
    assert result["eval"] == one["eval"] and result["eval"]["examples"] == 100
  ours, theirs = _weights(weights), _weights(tmp_path / "one.npz")
  assert ours.keys() == theirs.keys() and len(ours) > 200
  for key in ours:  # weights, BN statistics and RNG states, then the EMA's shadows
    np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-5, atol=1e-6, err_msg=key)
  # TensorBoard names its event files after the writing process: only process 0's is there.
  events = list(run.glob("train/events.out.tfevents.*"))
  assert len(events) == 1 and events[0].name.split(".")[-3] == str(results[0]["pid"])
  assert sorted(path.name for path in run.iterdir()) == sorted(path.name for path in (tmp_path / "one").iterdir())
  rows = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
  assert [row["step"] for row in rows] == list(range(2, 17, 2))
  stage_one, stage_two = (_rng_states(run / "checkpoints" / f"ckpt_{step}") for step in (8, 16))
  assert len(stage_one) == len(stage_two) > 0 and all((a != b).any() for a, b in zip(stage_one, stage_two))


@pytest.mark.e2e  # about 3 minutes: 2 runs of 2 processes
def test_sigterm_in_stage_two_resumes_to_the_uninterrupted_run(two_process_run, demo_records, tpu_shaped, tmp_path):
  """SIGTERM to both processes after step 10 (stage 2): both save one checkpoint at the step they agree on and exit
  75, and the TF engine refuses the folder in one line; the same commands go on from it (stage 2 only) to the
  uninterrupted run's weights, BN statistics, RNG states and EMA, bit for bit, and its eval. (A kill while Orbax
  writes: test_run_dir's save cut short; a kill between saves loses nothing a save wrote.)"""
  run = tmp_path / "run"

  def trained(*extra):
    return _start(lambda *flags: trainer_command(run, demo_records, *tpu_shaped, *extra, *flags))

  stopped = _signalled(trained(), run, 10, signal.SIGTERM)
  assert [status for status, _, _ in stopped] == [75, 75], stopped[0][2][-2000:]
  lines = {next((line for line in err.splitlines() if line.startswith("stopped by SIGTERM at step ")), err[-2000:])
           for _, _, err in stopped}
  assert len(lines) == 1 and "checkpoint saved" in (line := lines.pop())  # the same step in both processes
  step = int(line.split("at step ")[1].split(":")[0])
  assert 10 <= step < 16 and {path.name for path in (run / "checkpoints").iterdir()} == {"ckpt_8", f"ckpt_{step}"}

  refused = main_py(f"--model_dir={run}", f"--data_dir={demo_records}", f"--hparam_str={TINY_TRAINER}")
  assert refused.returncode == 2, refused.stderr[-3000:]
  assert refused.stderr.strip().splitlines()[-1] == (
      f"error: {run} holds ckpt_{step}, a checkpoint of the jax engine, which the tf engine cannot resume: "
      "rerun with --engine=jax, or use another --model_dir.")

  resumed = _ended(trained("--finish", f"--weights_out={tmp_path / 'resumed.npz'}"))
  assert [status for status, _, _ in resumed] == [0, 0], resumed[0][2][-2000:]
  assert "stage 2/2" in resumed[0][1] and "stage 1/2" not in resumed[0][1]  # continued, not restarted
  _, whole, whole_weights = two_process_run
  assert result_of(resumed[0][1])["eval"] == result_of(whole[0][1])["eval"]
  ours, theirs = _weights(tmp_path / "resumed.npz"), _weights(whole_weights)
  assert ours.keys() == theirs.keys()
  for key in ours:
    np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)


def test_a_process_alone_or_started_with_other_settings_stops_with_one_line(demo_records, tmp_path):
  """Process 1 without a coordinator, and process 0 without process 1, give up after --join_seconds; two
  processes whose settings differ both stop, naming the settings' group. One line each, exit 2, within 60 s."""
  def main_command_of(model_dir, *flags, hparam_str=TINY_TRAINER):
    return main_command("--engine=jax", "--mode=train", f"--model_dir={tmp_path / model_dir}",
                        f"--data_dir={demo_records}", f"--hparam_str={hparam_str}", "--join_seconds=5", *flags)

  def alone(index):  # a process of 2 on a port of its own: the other never comes
    return subprocess.Popen(main_command_of(f"alone{index}", f"--coordinator_address=127.0.0.1:{_free_port()}",
                                    "--num_processes=2", f"--process_id={index}"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=FOUR_DEVICES)

  started = time.monotonic()
  processes = [alone(0), alone(1)] + _start(lambda *flags: main_command_of(
      "differ", *flags, hparam_str=TINY_TRAINER + (",train.lr_base=0.02" if flags[-1].endswith("=1") else "")))
  ended = _ended(processes, timeout=120)
  seconds = time.monotonic() - started
  lines = [err.strip().splitlines()[-1] for _, _, err in ended]
  assert [status for status, _, _ in ended] == [2] * 4, lines
  assert all("Traceback" not in err for _, _, err in ended)
  for index in (0, 1):
    assert lines[index].startswith(f"error: process {index} could not join the coordinator at 127.0.0.1:")
    assert "--join_seconds" in lines[index]
  assert lines[2] == lines[3] == ("error: the processes hold different settings (train: process 1 against "
                                  "process 0): start every process with the same command and data, on the same "
                                  "model_dir.")
  assert seconds < 60


def test_the_process_flags_go_together():
  """A coordinator without the process count and index (or any one of them alone) is refused before JAX starts."""
  from effnetv2_tf.engines.jax.processes import join
  for given in (("127.0.0.1:1234", None, None), (None, 2, None), (None, None, 0)):
    with pytest.raises(ValueError, match="--coordinator_address, --num_processes and --process_id go together"):
      join(*given)
