"""Progressive learning vs fixed-size training on real photos: wall time and accuracy, side by side.

The same EfficientNetV2 (B0, by default at width 0.5 and depth 0.5), the same number of epochs and the same
final regularization, trained (a) at the final size throughout and (b) with the progressive schedule
(4 stages, base -> final px, RandAugment growing with the size; dropout fixed, so one traced step serves
all stages on the CPU); both evaluated with EMA weights at the final size. The default sizes keep the
official EfficientNetV2-S ratio (128 -> 300 px) at imagenette's own 224 px: 96 -> 224 px.
Also reports each stage's training speed and its switch overhead (retrace + pipeline rebuild) as a share of
the stage. Data: ../shared/data/imagenette (10 ImageNet classes), converted to TFRecords once.

With --equal_time, two more runs compare accuracy at equal wall time rather than equal epochs: progressive
for as many epochs as the fixed run's wall time allows, and fixed size for as few as the progressive run's.

  python benchmarks/progressive.py [--quick] [--equal_time] [--images DIR] [--per_class N] [--epochs E] [--size S]
                                   [--val_per_class N] [--seed N]
"""

import argparse
import os
import pathlib
import shutil
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.report import bad_input, report  # noqa: E402
from effnetv2_tf import hparams  # noqa: E402
from effnetv2_tf.data.convert import convert  # noqa: E402
from effnetv2_tf.engines.tf.engine import TFEngine  # noqa: E402
from effnetv2_tf.tpu.strategy import resolve_runtime  # noqa: E402
from effnetv2_tf.train.trainer import Trainer  # noqa: E402


def subset(images, out, per_class, val_per_class):
  """SPLIT/CLASS folders with the first `per_class` train and `val_per_class` val images a class (None: all)."""
  for split, count in (("train", per_class), ("val", val_per_class)):
    for class_dir in sorted((pathlib.Path(images) / split).iterdir()):
      target = pathlib.Path(out) / split / class_dir.name
      target.mkdir(parents=True)
      for path in sorted(class_dir.iterdir())[:count]:
        shutil.copy(path, target / path.name)


def train_once(name, records, model_dir, num_train, sizes, epochs, stages, batch, width, depth, seed):
  config = hparams.override(hparams.get_config("demo"), ",".join([
      f"model.width={width}", f"model.depth={depth}",
      "model.num_classes=10", f"data.num_train_examples={num_train}", f"train.epochs={float(epochs)}",
      f"progressive.stages={stages}", f"progressive.image_size_max={sizes[1]}", f"eval.image_size={sizes[1]}",
      f"progressive.image_size_min={sizes[0]}", f"train.batch_size={batch}", "progressive.rule=paper",
      "regularization.dropout_min=0.2", "regularization.dropout_max=0.2",
      "augment.magnitude_min=2.0", "augment.magnitude_max=8.0", "augment.crop_area_min=0.25", "eval.batch_size=100",
      f"train.seed={seed}", "runtime.steps_per_loop=20", "runtime.checkpoint_steps=100000"]))
  trainer = Trainer(hparams.resolve(config), model_dir, records, resolve_runtime("default"), TFEngine)
  started = time.perf_counter()
  trainer.train()
  seconds = time.perf_counter() - started
  result = trainer.finish()
  raw = trainer.evaluate(use_ema=False)
  rows = trainer.log.rows
  overheads, speeds = [], []
  for stage in trainer.schedule.stages:  # first loop of a stage minus the same steps at its steady rate
    loops = [r for r in rows if r["stage"] == stage.index]
    steps = [r["step"] - (loops[i - 1]["step"] if i else stage.start_step) for i, r in enumerate(loops)]
    durations = [n * batch / r["images_per_second"] for n, r in zip(steps, loops)]
    steady = statistics.median([d / n for d, n in zip(durations[1:], steps[1:])]) if len(loops) > 1 else 0.0
    overhead = durations[0] - steps[0] * steady
    overheads.append(round(100 * overhead / sum(durations), 1))
    speeds.append(f"{stage.image_size}px:{statistics.median(r['images_per_second'] for r in loops[1:] or loops):.0f}")
  return {"run": name, "stages": stages, "epochs": epochs, "wall s": round(seconds, 1),
          "top-1 (EMA)": round(result["top1"], 4), "top-1 (raw)": round(raw["top1"], 4),
          "eval images": result["examples"], "img/s per stage": " ".join(speeds),
          "switch overhead % per stage": overheads}


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--images", default=str(ROOT.parent / "shared" / "data" / "imagenette"))
  parser.add_argument("--quick", action="store_true", help="40 images a class, 4 epochs, 48 -> 96 px")
  parser.add_argument("--per_class", type=int, default=400, help="train images a class")
  parser.add_argument("--val_per_class", type=int, default=None, help="val images a class (default: all)")
  parser.add_argument("--epochs", type=int, default=10)
  parser.add_argument("--size", type=int, default=224, help="final train size = eval size")
  parser.add_argument("--base_size", type=int, default=96, help="first stage's size")
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--width", type=float, default=0.5, help="B0 width coefficient (1.0: the real B0)")
  parser.add_argument("--depth", type=float, default=0.5, help="B0 depth coefficient")
  parser.add_argument("--seed", type=int, default=0, help="weights, shuffling and augmentation seed")
  parser.add_argument("--equal_time", action="store_true",
                      help="also train each way for the other's wall time (progressive longer, fixed shorter)")
  parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "progressive.json"))
  args = parser.parse_args()
  if not (pathlib.Path(args.images) / "train").is_dir():
    bad_input(f"No images at {args.images}: pass --images DIR (train/CLASS/*, val/CLASS/*).")
  per_class, val_per_class, epochs, sizes = ((40, 20, 4, (48, 96)) if args.quick else
                                             (args.per_class, args.val_per_class, args.epochs,
                                              (args.base_size, args.size)))

  with tempfile.TemporaryDirectory() as work:
    work = pathlib.Path(work)
    subset(args.images, work / "images", per_class, val_per_class)
    summary = convert(work / "images", work / "records", shards=8)
    num_train = summary["written"]["train"]  # the demo set reads train-* and val-*, as convert names them
    common = {"num_train": num_train, "sizes": sizes, "epochs": epochs, "batch": args.batch, "width": args.width,
              "depth": args.depth, "seed": args.seed}
    rows = [train_once("fixed size", work / "records", work / "fixed", stages=1, **common),
            train_once("progressive", work / "records", work / "progressive", stages=4, **common)]
    fixed, progressive = rows
    ratio = round(progressive["wall s"] / fixed["wall s"], 3)
    if args.equal_time:
      rows.append(train_once("progressive, ~fixed's wall time", work / "records", work / "progressive_long",
                             stages=4, **{**common, "epochs": round(epochs / ratio)}))
      rows.append(train_once("fixed size, ~progressive's wall time", work / "records", work / "fixed_short",
                             stages=1, **{**common, "epochs": round(epochs * ratio)}))
  print(f"\nprogressive / fixed wall time: {ratio}  (target <= 0.6); top-1 {progressive['top-1 (EMA)']} vs "
        f"{fixed['top-1 (EMA)']} (target: progressive >= fixed)")
  report(rows, ["run", "stages", "epochs", "wall s", "top-1 (EMA)", "top-1 (raw)", "img/s per stage"], args.output,
         benchmark="progressive", per_class=per_class, seed=args.seed, epochs=epochs, sizes=sizes, batch=args.batch,
         width=args.width, depth=args.depth, wall_time_ratio=ratio)


if __name__ == "__main__":
  main()
