"""TensorFlow's start-up banner is left out; every other line written to stderr meanwhile is kept."""

import os
import subprocess
import sys

import pytest

from effnetv2_tf import quiet_start
from tests.helpers import ROOT


def test_only_the_known_start_up_lines_are_dropped(capfd):
  with quiet_start._filtered_stderr(quiet_start.BANNER + quiet_start.NO_GPU):
    os.write(2, b"I0000 port.cc:153] oneDNN custom operations are on. You may see ...\n")
    os.write(2, b"E0000 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error\n")
    os.write(2, b"error: something the user must see\n")
  assert capfd.readouterr().err == "error: something the user must see\n"


@pytest.mark.parametrize("module", ["effnetv2_tf.export", "effnetv2_tf.weights.official", "effnetv2_tf.predict"])
def test_the_package_s_commands_start_without_the_banner(module):
  done = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120,
                        cwd=ROOT)
  assert done.returncode == 0 and "usage:" in done.stdout, done.stderr[-2000:]
  assert not any(text in done.stderr for text in ("oneDNN custom operations", "cuInit", "cuda drivers")), done.stderr


def test_importing_the_package_s_modules_writes_nothing_to_stderr(tmp_path):
  """TensorFlow's first import, by whichever module of the package, leaves its banner out."""
  done = subprocess.run([sys.executable, "-c", "import effnetv2_tf.model, effnetv2_tf.data.pipeline"],
                        capture_output=True, text=True, timeout=120, cwd=tmp_path)
  assert done.returncode == 0 and done.stderr == "", done.stderr
