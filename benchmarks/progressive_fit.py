"""keras.applications' EfficientNetV2B0 trained with its own `fit` through effnetv2_tf.progressive: progressive
stages against a fixed size for the same epochs, wall time and top-1 side by side.

The model is docs/progressive-fit.md's: EfficientNetV2B0 without weights, built for any image size
(include_top=False, pooling="avg") with a Dropout named top_dropout and a Dense head. Both runs start from the same
initial weights, use Adam 1e-3 and batch 32, and end at the same regularization: fixed trains every epoch at the
final size with RandAugment 10 and dropout 0.2; progressive goes from the first size to the final one in 3 stages,
RandAugment 5 -> 10 and dropout 0.1 -> 0.2 (the paper's rule). Top-1 on every val photo at the final size. These
settings were set once and not tuned on any run. Data: ../shared/data/flowers (5 classes), a report set: nothing
was tuned on it.

  python benchmarks/progressive_fit.py [--quick] [--images DIR] [--per_class N] [--epochs E] [--sizes MIN MAX]
"""

import argparse
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import keras  # noqa: E402

from benchmarks.progressive import subset  # noqa: E402
from benchmarks.report import bad_input, report  # noqa: E402
from effnetv2_tf import progressive  # noqa: E402
from effnetv2_tf.data.convert import convert  # noqa: E402
from effnetv2_tf.data.pipeline import Preprocessing, eval_dataset  # noqa: E402
from effnetv2_tf.data.sources import TFRecordSource  # noqa: E402


def applications_b0(num_classes, seed):
  keras.utils.set_random_seed(seed)  # the same initial weights for both runs
  base = keras.applications.EfficientNetV2B0(include_top=False, weights=None, input_shape=(None, None, 3),
                                             pooling="avg")
  features = keras.layers.Dropout(0.2, name="top_dropout")(base.output)
  model = keras.Model(base.input, keras.layers.Dense(num_classes)(features), name="applications_b0")
  model.compile(keras.optimizers.Adam(1e-3), keras.losses.CategoricalCrossentropy(from_logits=True),
                metrics=[keras.metrics.CategoricalAccuracy(name="top1")])
  return model


class EpochTimes(keras.callbacks.Callback):
  def __init__(self):
    super().__init__()
    self.seconds = {}

  def on_epoch_begin(self, epoch, logs=None):
    self.started = time.perf_counter()

  def on_epoch_end(self, epoch, logs=None):
    self.seconds[epoch] = time.perf_counter() - self.started


def train_once(name, stages, records, num_classes, steps_per_epoch, batch, seed):
  model = applications_b0(num_classes, seed)
  times = EpochTimes()
  started = time.perf_counter()
  progressive.fit(model, records, stages, batch_size=batch, normalization="none", seed=seed,
                  steps_per_epoch=steps_per_epoch, callbacks=[times], verbose=2)
  seconds = time.perf_counter() - started
  final = stages[-1].image_size
  val = eval_dataset(TFRecordSource(os.path.join(records, "val-*")), Preprocessing(final, "none"), batch_size=64,
                     num_classes=num_classes)
  top1 = model.evaluate(val, verbose=0, return_dict=True)["top1"]
  per_stage = [f"{s.image_size}px:{sum(times.seconds[e] for e in range(s.start_epoch, s.end_epoch)):.0f}"
               for s in stages]
  return {"run": name, "stages": len(stages), "epochs": stages[-1].end_epoch, "wall s": round(seconds, 1),
          "top-1": round(top1, 4), "s per stage": " ".join(per_stage)}


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--images", default=str(ROOT.parent / "shared" / "data" / "flowers"))
  parser.add_argument("--quick", action="store_true", help="20 images a class, 10 val, 3 epochs, 64 -> 96 px")
  parser.add_argument("--per_class", type=int, default=400, help="train images a class")
  parser.add_argument("--epochs", type=int, default=10)
  parser.add_argument("--sizes", type=int, nargs=2, default=(128, 192), metavar=("MIN", "MAX"),
                      help="the first stage's size and the final (fixed) size")
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "progressive_fit.json"))
  args = parser.parse_args()
  if not (pathlib.Path(args.images) / "train").is_dir():
    bad_input(f"No images at {args.images}: pass --images DIR (train/CLASS/*, val/CLASS/*).")
  per_class, val_per_class, epochs, (low, high) = ((20, 10, 3, (64, 96)) if args.quick else
                                                   (args.per_class, None, args.epochs, args.sizes))
  runs = {"fixed size": progressive.plan(epochs, 1, image_size=(high, high), randaug=(10, 10), dropout=(0.2, 0.2)),
          "progressive": progressive.plan(epochs, 3, image_size=(low, high), randaug=(5, 10), dropout=(0.1, 0.2))}
  with tempfile.TemporaryDirectory() as work:
    work = pathlib.Path(work)
    subset(args.images, work / "images", per_class, val_per_class)
    summary = convert(work / "images", work / "records", shards=8)
    num_train, num_classes = summary["written"]["train"], len(os.listdir(work / "images" / "train"))
    rows = [train_once(name, stages, str(work / "records"), num_classes, num_train // args.batch, args.batch,
                       args.seed) for name, stages in runs.items()]
  fixed, progressive_row = rows
  ratio = round(progressive_row["wall s"] / fixed["wall s"], 3)
  print(f"\nprogressive / fixed wall time: {ratio}; top-1 {progressive_row['top-1']} vs {fixed['top-1']}")
  report(rows, ["run", "stages", "epochs", "wall s", "top-1", "s per stage"], args.output,
         benchmark="progressive_fit", model="keras.applications.EfficientNetV2B0", per_class=per_class,
         epochs=epochs, sizes=[low, high], batch=args.batch, seed=args.seed, wall_time_ratio=ratio,
         keras=keras.__version__, backend=keras.backend.backend())


if __name__ == "__main__":
  main()
