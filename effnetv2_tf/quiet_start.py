"""TensorFlow's start-up lines that say nothing about the run, left out of the console.

TensorFlow's C++ libraries write a banner (oneDNN, CPU instructions, "Could not find cuda drivers", a
cuInit error on machines without a GPU) before its logging is set up, so TF_CPP_MIN_LOG_LEVEL cannot hide
it, and it comes twice (two libraries). TensorFlow's first import, wherever it happens once effnetv2_tf is
imported (leave_out_banner, called by the package), runs with the process's stderr caught at the
file-descriptor level and lists the devices, then writes back every other line. The CUDA lines stay on a
machine with an NVIDIA driver, where they explain a GPU that is not found.
"""

import contextlib
import importlib
import importlib.abc
import importlib.util
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


def left_out(noise):
  """A context in which lines of the process's stderr (C++ libraries' too) holding any text of `noise` are left
  out of the console; the others are written back when it ends."""
  return _filtered_stderr(noise)


def _noise():
  return BANNER + (() if os.path.exists(NVIDIA_DRIVER) else NO_GPU)


class _QuietTensorFlow(importlib.abc.MetaPathFinder):
  """Finds TensorFlow with the other finders, once, and loads it with its banner left out."""

  def find_spec(self, name, path=None, target=None):
    if name != "tensorflow":
      return None
    sys.meta_path.remove(self)
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
      return spec
    load = spec.loader.exec_module

    def load_quietly(module):
      with _filtered_stderr(_noise()):
        load(module)
        module.config.list_physical_devices()  # CUDA's lines come when the devices are first listed

    spec.loader.exec_module = load_quietly
    return spec


def leave_out_banner():
  """TensorFlow's first import, by whatever imports it, leaves its start-up banner out of the console."""
  if "tensorflow" not in sys.modules and not any(isinstance(finder, _QuietTensorFlow) for finder in sys.meta_path):
    sys.meta_path.insert(0, _QuietTensorFlow())


def import_tensorflow():
  """Imports TensorFlow and Keras (and lists the devices) without the start-up banner, and, for the commands
  that call it, without TensorFlow's C++ info and warning lines (the commands' own lines say in words what went
  wrong: an undecodable photo, a bucket out of reach; TF_CPP_MIN_LOG_LEVEL=0 in the environment shows them);
  returns tf."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  leave_out_banner()
  importlib.import_module("keras")
  import tensorflow as tf
  return tf
