"""Your own photos at equal wall time: our route vs a plain keras.applications + fit script.

For each photo set (../shared/data/imagenette and flowers, SPLIT/CLASS/*) and seed, alternately:
  ours      python main.py --hparams=photos-b0 --data_dir=RECORDS --hparam_str="train.time_budget=M,train.seed=S"
            (the README's own-photos route: converted once, sizes from the data, progressive stages, eval
            with EMA weights at the data's size); its whole process time, start to exit, is measured;
  baseline  keras.applications.EfficientNetV2B0 from scratch (weights=None), Adam 1e-3, horizontal flips,
            label smoothing 0.1, batch 32, trained at our run's last-stage size until the same wall time
            from its own process start as ours took, then evaluated at that size on the val split.
The baseline gets its eval on top of that time: the comparison leans its way. Top-1 is on the whole val split;
the table gives the median of the seeds per set and route.

  python benchmarks/own_photos.py [--minutes 5] [--seeds 0,1,2] [--sets imagenette,flowers] [--quick]
                                  [--routes ours]  (ours alone, after a change to our route only: half the
                                  time; writes own_photos_ours.json)
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED_DATA = ROOT.parent / "shared" / "data"

from benchmarks.report import report  # noqa: E402


def baseline(images, size, seconds, seed, started):
  """Trains and evaluates the baseline in this process; returns its result row."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  import keras
  import tensorflow as tf
  keras.utils.set_random_seed(seed)

  def folder(split, shuffle):
    return keras.utils.image_dataset_from_directory(
        os.path.join(images, split), image_size=(size, size), batch_size=32, label_mode="categorical",
        shuffle=shuffle, seed=seed, verbose=False)

  flip = keras.layers.RandomFlip("horizontal", seed=seed)
  train = folder("train", True).map(lambda x, y: (flip(x, training=True), y)).prefetch(tf.data.AUTOTUNE)
  val = folder("val", False).prefetch(tf.data.AUTOTUNE)
  num_classes = train.element_spec[1].shape[-1]
  model = keras.applications.EfficientNetV2B0(weights=None, classes=num_classes, input_shape=(size, size, 3))
  model.compile(keras.optimizers.Adam(1e-3), keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
                metrics=["accuracy"])

  class Deadline(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
      if time.time() - started >= seconds:
        self.model.stop_training = True

  history = model.fit(train, epochs=10_000, callbacks=[Deadline()], verbose=0)
  trained = time.time() - started
  _, top1 = model.evaluate(val, verbose=0)
  return {"top1": round(float(top1), 4), "epochs": len(history.epoch), "train_seconds": round(trained, 1),
          "seconds": round(time.time() - started, 1)}


def ours(records, model_dir, minutes, seed):
  """Runs main.py as a user would; returns its result row (top-1 from the run's eval.jsonl)."""
  started = time.time()
  done = subprocess.run([sys.executable, str(ROOT / "main.py"), "--hparams=photos-b0", f"--data_dir={records}",
                         f"--model_dir={model_dir}", f"--hparam_str=train.time_budget={minutes},train.seed={seed}"],
                        check=True, cwd=ROOT, stdout=subprocess.PIPE, text=True)
  seconds = time.time() - started
  evals = [json.loads(line) for line in open(os.path.join(model_dir, "eval.jsonl"))]
  from effnetv2_tf.run_dir import RunDir
  config = RunDir(model_dir).read_config()
  return {"top1": round(evals[-1]["top1"], 4), "size": config["progressive"]["image_size_max"],
          "epochs": round(config["train"]["epochs"], 2), "stages": config["progressive"]["stages"],
          "augment": config["augment"]["policy"], "seconds": round(seconds, 1),
          "refits": done.stdout.count("(refitted at step ")}  # how often the budget refitted the run's length


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--minutes", type=float, default=5.0)
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--sets", default="imagenette,flowers")
  parser.add_argument("--quick", action="store_true", help="2 minutes (start-up and timing the step take "
                      "most of one on a slow CPU), one seed, imagenette only")
  parser.add_argument("--routes", default="ours,baseline", choices=("ours,baseline", "ours"))
  parser.add_argument("--baseline", nargs=4, metavar=("IMAGES", "SIZE", "SECONDS", "SEED"), help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.baseline:  # the child process of one baseline run
    images, size, seconds, seed = args.baseline
    print(json.dumps(baseline(images, int(size), float(seconds), int(seed), float(os.environ["BENCH_STARTED"]))))
    return
  if args.quick:
    args.minutes, args.seeds, args.sets = 2.0, "0", "imagenette"
  from effnetv2_tf.data.convert import convert
  rows = []
  with tempfile.TemporaryDirectory() as scratch:
    for name in args.sets.split(","):
      images = SHARED_DATA / name
      if not images.is_dir():
        sys.exit(f"{images} is missing: this benchmark reads the shared photo sets")
      records = os.path.join(scratch, name)
      convert(images, records)
      for seed in (int(s) for s in args.seeds.split(",")):
        mine = ours(records, os.path.join(scratch, f"{name}-{seed}"), args.minutes, seed)
        rows.append({"set": name, "seed": seed, "route": "ours", **mine})
        print(rows[-1], flush=True)
        if args.routes == "ours":
          continue
        started = time.time()
        child = subprocess.run([sys.executable, __file__, "--baseline", str(images), str(mine["size"]),
                                str(mine["seconds"]), str(seed)], check=True, capture_output=True, text=True,
                               env={**os.environ, "BENCH_STARTED": str(started)})
        theirs = json.loads(child.stdout.strip().splitlines()[-1])
        rows.append({"set": name, "seed": seed, "route": "baseline", "size": mine["size"], **theirs})
        print(rows[-1], flush=True)
  medians = [{"set": name, "route": route, "top1": statistics.median(r["top1"] for r in rows
                                                                     if r["set"] == name and r["route"] == route)}
             for name in args.sets.split(",") for route in args.routes.split(",")]
  results = "own_photos.json" if args.routes == "ours,baseline" else "own_photos_ours.json"
  report(medians, ["set", "route", "top1"], ROOT / "benchmarks" / "results" / results,
         minutes=args.minutes, seeds=args.seeds, runs=rows)


if __name__ == "__main__":
  main()
