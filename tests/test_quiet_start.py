"""TensorFlow's start-up banner is left out; every other line written to stderr meanwhile is kept."""

import os

from effnetv2_tf import quiet_start


def test_only_the_known_start_up_lines_are_dropped(capfd):
  with quiet_start._filtered_stderr(quiet_start.BANNER + quiet_start.NO_GPU):
    os.write(2, b"I0000 port.cc:153] oneDNN custom operations are on. You may see ...\n")
    os.write(2, b"E0000 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error\n")
    os.write(2, b"error: something the user must see\n")
  assert capfd.readouterr().err == "error: something the user must see\n"
