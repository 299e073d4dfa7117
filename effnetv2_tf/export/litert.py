"""LiteRT (.tflite): Keras' LiteRT exporter writes the serving model at one image size and batch 1; the
interpreter of ai-edge-litert (LiteRT's runtime; tf.lite's interpreter is deprecated) reads it.

Variants, by what is stored in 8 or 16 bits:
  litert               float32, as trained
  litert-float16       weights in float16 (half the size; the CPU computes in float32)
  litert-dynamic-int8  weights in int8, activations quantized on the fly (a quarter of the size)
  litert-int8          weights and activations in int8, their ranges calibrated on representative images
                       (integer kernels, the fastest on phones and edge TPUs, and the one that loses accuracy:
                       the export measures it); input and output stay float32
"""

import numpy as np

from effnetv2_tf.export.formats import QUANTIZED
from effnetv2_tf.export.runtimes import needs
from effnetv2_tf.quiet_start import import_tensorflow

tf = import_tensorflow()

VARIANTS = ("litert", *QUANTIZED)


def _converter_settings(variant, representative):
  """Keras' exporter sets these on the converter it makes; they are TensorFlow's converter constants, which no
  other library names."""
  if variant == "litert":
    return {}
  settings = {"optimizations": [tf.lite.Optimize.DEFAULT]}
  if variant == "litert-float16":
    settings["target_spec"] = {"supported_types": [tf.float16]}
  elif variant == "litert-int8":
    settings["target_spec"] = {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]}
    settings["representative_dataset"] = lambda: ([image[None]] for image in representative)
  return settings


def write(served, path, image_size, variant="litert", representative=None):
  """Writes `served` (serving.serving_model) as a LiteRT model of [1, image_size, image_size, 3] images in [0, 1].

  representative: for litert-int8, float images [N, image_size, image_size, 3] in [0, 1] whose activations set
    the int8 ranges (a few hundred of the training photos).
  """
  if variant not in VARIANTS:
    raise ValueError(f"Unknown LiteRT variant {variant!r}; expected one of {', '.join(VARIANTS)}.")
  if variant == "litert-int8" and (representative is None or not len(representative)):
    raise ValueError("litert-int8 needs representative images (their activations set the int8 ranges).")
  signature = [tf.TensorSpec((1, image_size, image_size, 3), tf.float32, name="images")]
  served.export(path, format="litert", verbose=False, input_signature=signature,
                **_converter_settings(variant, representative))
  return path


def runner(path):
  """The LiteRT interpreter of the file at `path`, as a function of float images [N, S, S, 3] in [0, 1] -> logits
  (one image at a time: the file's batch is 1)."""
  interpreter = needs("ai_edge_litert.interpreter", "running LiteRT").Interpreter(model_path=path)
  interpreter.allocate_tensors()
  source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

  def logits(images):
    out = []
    for image in np.asarray(images, np.float32):
      interpreter.set_tensor(source["index"], image[None])
      interpreter.invoke()
      out.append(interpreter.get_tensor(target["index"])[0].copy())
    return np.stack(out)
  return logits
