"""The export formats: what each writes into EXPORT_DIR and what reads it (no TensorFlow here: main.py's flags
name them before TensorFlow loads)."""

FLAVOURS = ("classification", "feature-vector")  # the SavedModels of the TF-Hub layout
# name: (what it writes into EXPORT_DIR, what reads it)
FORMATS = {
    "saved_model": (FLAVOURS, "TensorFlow (tf.saved_model.load, TF Serving, keras.layers.TFSMLayer), TF-Hub layout"),
    "onnx": (("classification.onnx",), "onnxruntime, or any ONNX runtime"),
    "litert": (("classification.tflite",), "LiteRT (ai-edge-litert's Interpreter; Android, iOS), float32"),
    "litert-float16": (("classification-float16.tflite",), "LiteRT, float16 weights"),
    "litert-dynamic-int8": (("classification-dynamic-int8.tflite",), "LiteRT, int8 weights"),
    "litert-int8": (("classification-int8.tflite",), "LiteRT, int8 weights and activations (edge TPU compilers)"),
    "preset": (("preset",), "Keras 3 on TensorFlow or JAX: effnetv2_tf.from_preset(EXPORT_DIR/preset)"),
}
QUANTIZED = ("litert-float16", "litert-dynamic-int8", "litert-int8")  # measured on the run's val photos
LABELS_FILE = "labels.txt"  # the class names beside the ONNX and LiteRT files, one a line
EXPORT_ENTRIES = (*(entry for entries, _ in FORMATS.values() for entry in entries), LABELS_FILE)


class ExportError(ValueError):
  """The export cannot be written as asked (e.g. the directory is not empty)."""


def parse_formats(text):
  """"saved_model,onnx" -> ("saved_model", "onnx"); an unknown name is an ExportError listing the known ones."""
  names = tuple(dict.fromkeys(name.strip() for name in str(text).split(",") if name.strip()))
  unknown = [name for name in names if name not in FORMATS]
  if unknown or not names:
    raise ExportError(f"--format {text!r}: unknown {', '.join(unknown) or 'empty'}; choose from "
                      f"{', '.join(FORMATS)} (a comma-separated list).")
  return names


def formats_help():
  """One clause a format: its name, what it writes and what reads it (the --format help of both commands)."""
  return "; ".join(f"{name}: {', '.join(entries)} ({reader})" for name, (entries, reader) in FORMATS.items())
