"""The JAX engine's state on 8 devices: what it refuses, and what its compiled step needs. (Its steps and eval
against the TF engine's: test_jax_engine.)"""

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT, tiny

pytest.importorskip("jax", reason="the JAX route is not installed: pip install -e \".[jax]\"")
pytestmark = pytest.mark.jax


def test_refusals_in_one_message_and_the_step_memory_a_line_in_the_batch(tmp_path):
  """A batch that does not split over the devices, and a checkpoint of another model, each refused naming it.
  XLA's memory analysis of the step compiled at 8, 16 and 24 images a replica: a line (what the plan's largest
  batch is read off), 24 within 2% of what 8 and 16 draw, and growing with the batch; the plan on a CPU whose
  memory that line says is too small for the batch it would time."""
  from effnetv2_tf.train.plan import fitting_batch
  done = subprocess.run([sys.executable, "-m", "tests.train.jax_state_checks", tmp_path / "checkpoints",
                         tiny(eval__batch_size=16)], capture_output=True, text=True, cwd=ROOT, timeout=300,
                        env={**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8"})
  assert done.returncode == 0, done.stderr[-3000:]
  checked = json.loads(done.stdout.strip().splitlines()[-1])
  split, other_model, too_small = checked["refused"]
  assert split == "eval.batch_size 10 does not split over the 8 devices: make it a multiple of 8."
  assert other_model.startswith(f"Checkpoint {tmp_path / 'checkpoints' / 'ckpt_0'} does not fit this model: ")
  memory = {int(count): size for count, size in checked["memory"].items()}
  assert 0 < memory[8] < memory[16] < memory[24]
  per_replica, fixed, image = fitting_batch(memory.get, memory[24] / 0.9)
  assert fixed + 24 * image == pytest.approx(memory[24], rel=0.02) and per_replica in (16, 24)
  # The plan on a CPU whose memory holds 4 images a device of the final stage's step: it times 32 images a step
  # (the largest divisor of 256 that splits over the 8 devices and fits), not 64, and says why.
  assert checked["planned"] == {"timed": 32, "replicas": 8, "per_replica": 4}
  assert "timing 32 images a step, not 64: the " in done.stdout and " holds 32 at 40 px (" in done.stdout
  assert too_small.startswith("--plan: not one image a device of the final stage's step at 40 px fits the ")
  assert too_small.endswith("plan on the machine that will train, or a smaller model.")
  assert 0 < checked["host"] * 8 <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2
