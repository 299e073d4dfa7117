"""Input-pipeline throughput on real JPEGs, next to the B0 train step that would consume it.

Converts a folder of real photos (default ../shared/data/imagenette/train) to TFRecords once, then times
(a) decode+crop+flip, (b) + RandAugment (2 ops, m=10), (c) + mixup 0.2, at 128 and 224 px with AUTOTUNE
parallelism, and our efficientnetv2-b0 train step at 128 px, batch 32, in the same run. Only one pipeline
is alive at a time (idle tf.data iterators steal cores). Writes benchmarks/results/input_pipeline.json.

  python benchmarks/input_pipeline.py [--quick] [--images DIR]
"""

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tensorflow as tf  # noqa: E402

from benchmarks.report import bad_input, report  # noqa: E402
from benchmarks.train_step import build_step  # noqa: E402
from effnetv2_tf.data.convert import convert  # noqa: E402
from effnetv2_tf.data.pipeline import Preprocessing, train_dataset  # noqa: E402
from effnetv2_tf.data.sources import TFRecordSource  # noqa: E402
from effnetv2_tf.model import create_model  # noqa: E402

VARIANTS = {"a: crop+flip": {}, "b: + RandAugment m10": {"augment": "randaug", "randaug_magnitude": 10.0},
            "c: + RandAugment + mixup": {"augment": "randaug", "randaug_magnitude": 10.0, "mixup_alpha": 0.2}}


def pipeline_rate(source, size, batches, rounds, **stage):
  dataset = train_dataset(source, Preprocessing(size, "center_128", **stage), batch_size=32, num_classes=10,
                          seed=0)
  iterator = iter(dataset)
  for _ in range(5):  # warm-up: AUTOTUNE settles, buffers fill
    next(iterator)
  rates = []
  for _ in range(rounds):
    start = time.perf_counter()
    for _ in range(batches):
      next(iterator)
    rates.append(32 * batches / (time.perf_counter() - start))
  del iterator
  return statistics.median(rates)


def train_rate(steps, rounds):
  model = create_model("efficientnetv2-b0", num_classes=10, classifier_activation=None)
  step = build_step(model, 32, jit_compile=False)
  images = tf.random.normal((32, 128, 128, 3))
  labels = tf.zeros((32,), tf.int64)
  step(images, labels).numpy()
  rates = []
  for _ in range(rounds):
    start = time.perf_counter()
    for _ in range(steps):
      step(images, labels).numpy()
    rates.append(32 * steps / (time.perf_counter() - start))
  return statistics.median(rates)


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--images", default=str(ROOT.parent / "shared" / "data" / "imagenette" / "train"))
  parser.add_argument("--quick", action="store_true", help="fewer batches and rounds")
  parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "input_pipeline.json"))
  args = parser.parse_args()
  if not pathlib.Path(args.images).is_dir():
    bad_input(f"No images at {args.images}: pass --images DIR (CLASS/*.jpg).")
  batches, rounds = (5, 3) if args.quick else (15, 5)

  with tempfile.TemporaryDirectory() as records:
    convert(args.images, records, shards=8)
    source = TFRecordSource(str(pathlib.Path(records) / "train-*"))
    train = train_rate(3 if args.quick else 6, rounds)
    rows = []
    for size in (128, 224):
      for name, stage in VARIANTS.items():
        rate = pipeline_rate(source, size, batches, rounds, **stage)
        rows.append({"size": size, "pipeline": name, "img/s": round(rate, 1),
                     "img/s per core": round(rate / os.cpu_count(), 1),
                     "x B0 train step (128 px)": round(rate / train, 2)})
        print(rows[-1], flush=True)

  print(f"\nB0 train step, 128 px, batch 32: {train:.1f} img/s")
  report(rows, ["size", "pipeline", "img/s", "img/s per core", "x B0 train step (128 px)"], args.output,
         benchmark="input_pipeline", cores=os.cpu_count(), b0_train_img_per_s=round(train, 1))

if __name__ == "__main__":
  main()
