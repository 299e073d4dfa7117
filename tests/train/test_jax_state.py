"""What the JAX engine's state refuses, on 8 devices. (Its steps and eval against the TF engine's:
test_jax_engine.)"""

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT, tiny

pytest.importorskip("jax", reason="the JAX route is not installed: pip install -e \".[jax]\"")
pytestmark = pytest.mark.jax


def test_a_batch_that_does_not_split_over_the_devices_and_a_checkpoint_of_another_model_are_refused(tmp_path):
  done = subprocess.run([sys.executable, "-m", "tests.train.jax_refusals", tmp_path / "checkpoints",
                         tiny(eval__batch_size=16)], capture_output=True, text=True, cwd=ROOT, timeout=300,
                        env={**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8"})
  assert done.returncode == 0, done.stderr[-3000:]
  split, other_model = json.loads(done.stdout.strip().splitlines()[-1])
  assert split == "eval.batch_size 10 does not split over the 8 devices: make it a multiple of 8."
  assert other_model.startswith(f"Checkpoint {tmp_path / 'checkpoints' / 'ckpt_0'} does not fit this model: ")
