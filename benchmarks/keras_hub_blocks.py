"""Can keras-hub's EfficientNet express the official EfficientNetV2? Its Fused-MBConv block beside ours (which
reproduces the official logits) with the same weights, stride 2, on an even and an odd input size.

The official models pad a strided convolution as TensorFlow's "SAME" does: on an even input, nothing above and to
the left, one pixel below and to the right. keras-hub pads one pixel on every side, then convolves "valid". Writes
benchmarks/results/keras_hub_blocks.json. Needs keras-hub beside this package (its own requirements pin another
TensorFlow, so not in our extras), e.g.

  pip install --no-deps --target /tmp/khub keras-hub regex rich kagglehub kagglesdk tqdm
  PYTHONPATH=/tmp/khub python benchmarks/keras_hub_blocks.py
"""

import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.report import bad_input, report  # noqa: E402

SIZES = (32, 33)  # even: the paddings differ; odd: they agree


def main():
  try:
    import keras_hub
    from keras_hub.src.models.efficientnet.fusedmbconv import FusedMBConvBlock
  except ImportError as error:
    bad_input(f"keras-hub cannot be imported ({error}): install it as this file's docstring says.")
  import numpy as np
  from effnetv2_tf.model import FusedMBConv
  rng = np.random.default_rng(0)
  rows = []
  for size in SIZES:
    images = rng.normal(size=(2, size, size, 24)).astype("float32")
    theirs = FusedMBConvBlock(input_filters=24, output_filters=48, expand_ratio=4, kernel_size=3, strides=2,
                              se_ratio=0.0, batch_norm_momentum=0.9, batch_norm_epsilon=1e-3, dropout=0.0,
                              name="block2a_")
    ours = FusedMBConv(24, 48, 3, 2, 4, name="blocks_2")
    ours(images), theirs(images)
    if [w.shape for w in ours.weights] != [w.shape for w in theirs.weights]:
      bad_input("keras-hub's block holds other weights than this script knows: update the script.")
    weights = []  # random kernels and BN statistics (positive variances)
    for variable in ours.weights:
      value = rng.normal(0, 0.1, variable.shape).astype("float32")
      weights.append(np.abs(value) + 0.5 if variable.path.endswith(("moving_variance", "gamma")) else value)
    ours.set_weights(weights)
    theirs.set_weights(weights)
    a, b = np.asarray(ours(images)), np.asarray(theirs(images))
    rows.append({"input": f"{size}x{size}", "output": "x".join(map(str, a.shape[1:3])),
                 "largest_difference": float(f"{np.max(np.abs(a - b)):.3g}"),
                 "output_scale": float(f"{np.max(np.abs(a)):.3g}")})
  report(rows, ["input", "output", "largest_difference", "output_scale"],
         ROOT / "benchmarks" / "results" / "keras_hub_blocks.json", keras_hub=keras_hub.__version__)


if __name__ == "__main__":
  main()
