"""TensorFlow's start-up lines that say nothing about the run, left out of the console.

TensorFlow's C++ libraries write a banner (oneDNN, CPU instructions, "Could not find cuda drivers", a
cuInit error on machines without a GPU) before its logging is set up, so TF_CPP_MIN_LOG_LEVEL cannot hide
it, and it comes twice (two libraries). import_tensorflow() imports TensorFlow and Keras and lists the
devices with the process's stderr caught at the file-descriptor level, then writes back every other line.
The CUDA lines stay on a machine with an NVIDIA driver, where they explain a GPU that is not found.
"""

import contextlib
import importlib
import os
import sys
import tempfile

BANNER = ("All log messages before absl::InitializeLog() is called", "oneDNN custom operations are on",
          "This TensorFlow binary is optimized to use available CPU instructions",
          "To enable the following instructions:")
NO_GPU = ("Could not find cuda drivers on your machine", "failed call to cuInit")
NVIDIA_DRIVER = "/proc/driver/nvidia"


@contextlib.contextmanager
def _filtered_stderr(noise):
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as caught:
    os.dup2(caught.fileno(), 2)
    try:
      yield
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      caught.seek(0)
      kept = [line for line in caught.read().decode(errors="replace").splitlines(keepends=True)
              if not any(text in line for text in noise)]
      sys.stderr.write("".join(kept))
      sys.stderr.flush()


def import_tensorflow():
  """Imports TensorFlow and Keras (and initialises the devices) without the start-up banner; returns tf."""
  noise = BANNER + (() if os.path.exists(NVIDIA_DRIVER) else NO_GPU)
  with _filtered_stderr(noise):
    importlib.import_module("keras")  # its libraries print the banner a second time
    import tensorflow as tf
    tf.config.list_physical_devices()  # CUDA's lines come when the devices are first listed
  return tf
