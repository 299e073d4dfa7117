"""Stop signals: the first asks for a checkpoint at the end of the host loop, a second one ends a stuck run."""

import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import ROOT

# The main thread waits inside TensorFlow for data that never comes, where Python signal handlers cannot run.
# TensorFlow is set up first (the TPU build looks for a TPU for 5 s at the first op, holding the interpreter, so
# that both signals would reach the watcher together and read as one doubled notice).
STUCK_IN_DATA = """
import time
import tensorflow as tf
from effnetv2_tf.train.preemption import StopSignals
def never():
  time.sleep(10_000)
  yield 0
tf.zeros(1)
with StopSignals() as stop:
  print("waiting", flush=True)
  next(iter(tf.data.Dataset.from_generator(never, output_signature=tf.TensorSpec((), tf.int32))))
"""

# The same, with the bound of runtime.stop_seconds (2 s here) and a checkpoint to name.
STUCK_WITH_A_BOUND = STUCK_IN_DATA.replace("StopSignals()", "StopSignals(2.0, lambda: '/runs/x/checkpoints/ckpt-40')")

# The main thread is writing a checkpoint (a sleep stands in for it), then leaves the context.
SAVING = """
import time
from effnetv2_tf.train.preemption import StopSignals
with StopSignals() as stop:
  with stop.saving():
    print("saving", flush=True)
    time.sleep(4)
  print("saved after", stop.received, flush=True)
"""


@pytest.fixture
def start():
  """Starts a script that prints "waiting" or "saving" when ready; it is killed if a test leaves it running."""
  processes = []

  def started(script):
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=ROOT)
    processes.append(process)
    assert process.stdout.readline().strip() in ("waiting", "saving")
    time.sleep(0.5)
    return process

  yield started
  for process in processes:
    process.kill()
    process.wait()


def test_a_second_signal_ends_a_run_stuck_in_its_data_at_once(start):
  process = start(STUCK_IN_DATA)
  process.send_signal(signal.SIGTERM)
  time.sleep(2)  # past the doubled-notice window; the first signal alone cannot stop it
  assert process.poll() is None
  process.send_signal(signal.SIGTERM)
  _, stderr = process.communicate(timeout=30)
  assert process.returncode == 128 + signal.SIGTERM, stderr[-2000:]
  lines = [line for line in stderr.splitlines() if line.strip()]
  assert lines[-2] == ("SIGTERM: stopping after this host loop with a checkpoint; send it again to stop at once "
                       "without one")
  assert lines[-1] == ("SIGTERM again: stopped at once without saving; no checkpoint had been saved; rerun the same "
                       "command to start again")  # a run stopped before its first checkpoint


def test_a_doubled_notice_or_a_signal_during_a_save_does_not_cut_it_short(start):
  process = start(SAVING)
  process.send_signal(signal.SIGINT)
  process.send_signal(signal.SIGINT)  # the same notice twice: ignored
  time.sleep(1.5)
  process.send_signal(signal.SIGINT)  # during the save: it finishes
  stdout, stderr = process.communicate(timeout=30)
  assert process.returncode == 0, stderr[-2000:]
  assert stdout.strip().splitlines()[-1] == "saved after SIGINT"
  assert "SIGINT: a checkpoint is being written; stopping when it is done" in stderr


def test_one_signal_ends_a_run_stuck_in_its_data_within_the_bound(start):
  process = start(STUCK_WITH_A_BOUND)
  signalled = time.monotonic()
  process.send_signal(signal.SIGTERM)
  _, stderr = process.communicate(timeout=30)
  assert process.returncode == 128 + signal.SIGTERM, stderr[-2000:]
  assert 1.5 < time.monotonic() - signalled < 10
  assert [line for line in stderr.splitlines() if line.strip()][-1] == (
      "SIGTERM: the host loop did not end within 2 s (runtime.stop_seconds): stopped without saving; the last "
      "checkpoint is /runs/x/checkpoints/ckpt-40; rerun the same command to resume from it")
