"""The export's optional libraries (pip install -e ".[export]"): a missing one is one line naming the extra."""

import importlib


class MissingRuntimeError(ImportError):
  """A format's writer or reader is not installed."""


def needs(module, purpose):
  """The module `module`, or MissingRuntimeError naming the extra that brings it."""
  try:
    return importlib.import_module(module)
  except ImportError:
    raise MissingRuntimeError(f"{purpose} needs {module.split('.')[0]}, which is not installed: "
                              'pip install -e ".[export]" (tf2onnx, onnx, onnxruntime, ai-edge-litert).') from None
