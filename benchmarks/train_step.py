"""Train-step throughput: our EfficientNetV2 vs keras.applications', side by side in one process.

Same variant, input (128 px, batch 32 by default), RMSProp with the official settings and a
tf.function step, with and without jit_compile. Steps alternate between the two models, so the machine's
speed drifts (seen here: 41 to 58 img/s for the same B0 step within minutes) hit both alike; medians are
reported. Writes benchmarks/results/train_step.json.

  python benchmarks/train_step.py            # B0 and S, graph and XLA
  python benchmarks/train_step.py --quick    # B0 only, fewer steps
"""

import argparse
import os
import pathlib
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks.report import report  # noqa: E402
from effnetv2_tf.model import create_model  # noqa: E402

KERAS_APPLICATIONS = {"efficientnetv2-b0": keras.applications.EfficientNetV2B0,
                      "efficientnetv2-s": keras.applications.EfficientNetV2S}


def build_step(model, batch_size, jit_compile):
  optimizer = keras.optimizers.RMSprop(0.016 * batch_size / 256, rho=0.9, momentum=0.9, epsilon=1e-3)
  optimizer.build(model.trainable_variables)

  @tf.function(jit_compile=jit_compile)
  def step(images, labels):
    with tf.GradientTape() as tape:
      logits = model(images, training=True)
      loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))
    optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
    return loss

  return step


def time_steps(step, images, labels, steps):
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    step(images, labels).numpy()
    times.append(time.perf_counter() - start)
  return times


def compare(variant, size, batch_size, jit_compile, steps, rounds):
  rng = np.random.default_rng(0)
  images = tf.constant(rng.normal(size=(batch_size, size, size, 3)).astype("float32"))
  labels = tf.constant(rng.integers(0, 1000, batch_size))
  models = {
      "ours": create_model(variant, classifier_activation=None),
      "keras.applications": KERAS_APPLICATIONS[variant](weights=None, include_preprocessing=False,
                                                        classifier_activation=None, input_shape=(size, size, 3)),
  }
  row = {"variant": variant, "size": size, "batch": batch_size, "jit_compile": jit_compile}
  step_fns, times = {}, {}
  for label, model in models.items():
    start = time.perf_counter()
    step_fns[label] = build_step(model, batch_size, jit_compile)
    step_fns[label](images, labels).numpy()
    row[f"{label} first step s"] = round(time.perf_counter() - start, 1)
    times[label] = []
  for _ in range(rounds * steps):
    for label in models:
      times[label] += time_steps(step_fns[label], images, labels, 1)
  for label in models:
    row[f"{label} img/s"] = round(batch_size / statistics.median(times[label]), 1)
  row["ratio ours/keras"] = round(row["ours img/s"] / row["keras.applications img/s"], 3)
  return row


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--quick", action="store_true", help="B0 only, 3 rounds of 3 steps")
  parser.add_argument("--size", type=int, default=128)
  parser.add_argument("--batch_size", type=int, default=32)
  parser.add_argument("--output", default=str(pathlib.Path(__file__).parent / "results" / "train_step.json"))
  args = parser.parse_args()

  variants = ["efficientnetv2-b0"] if args.quick else ["efficientnetv2-b0", "efficientnetv2-s"]
  steps, rounds = (3, 3) if args.quick else (5, 4)
  rows = []
  for jit_compile in (False, True):
    for variant in variants:
      rows.append(compare(variant, args.size, args.batch_size, jit_compile, steps, rounds))
      print(rows[-1], flush=True)

  report(rows, ["variant", "jit_compile", "ours img/s", "keras.applications img/s", "ratio ours/keras"],
         args.output, benchmark="train_step", device="cpu")

if __name__ == "__main__":
  main()
