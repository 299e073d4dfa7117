"""Your own photos at equal wall time: our route vs a plain keras.applications + fit script, on a panel.

For each photo set (SPLIT/CLASS/* with train and val splits) and seed, alternately:
  ours   python main.py --hparams=photos-b0 --data_dir=RECORDS --hparam_str="train.time_budget=M,train.seed=S"
         (the README's own-photos route as written: converted once, then the recipe decides the rest);
         its whole process time, start to exit, is recorded; top-1 from the run's eval.jsonl;
  plain  keras.applications.EfficientNetV2B0 from scratch (weights=None), Adam 1e-3, horizontal flips, label
         smoothing 0.1, batch 32, photos resized by image_dataset_from_directory, trained until M minutes
         after its own process start, then evaluated on the val split. Its size is the best of --plain_sizes
         (128, 192, 224) on seed 0, as a careful user would choose it: by trying each; the other seeds run at
         that size. Its rows are cached in results/own_photos_plain.json (they do not depend on our recipe).
Both train for M minutes and evaluate on top (our budget ends training at about M minutes too). The table
gives per set and route the median, min and max top-1 over the seeds, and ours minus plain (medians).

Sets: a path (SPLIT/CLASS/*), or a name: imagenette and flowers (../shared/data, the sets the recipe was first
tuned on) or one of the panel's (../shared/data/panel, rebuilt by benchmarks/panel.py). TUNED_ON below names
the sets whose results chose the recipe's defaults; the others are only reported.

  python benchmarks/own_photos.py [--sets imagenette,flowers,cifar10,...|PATH] [--minutes 10] [--seeds 0,1,2]
                                  [--plain_sizes 128,192,224] [--routes ours,plain|ours|plain] [--quick]
"""

import argparse
import hashlib
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
RESULTS = ROOT / "benchmarks" / "results"
PLAIN_CACHE = RESULTS / "own_photos_plain.json"

# The sets looked at to choose the photos-* defaults. A default changed after looking at another set's result
# moves that set here (signs: the short-run threshold, 10 -> 30 epochs).
TUNED_ON = ("imagenette", "flowers", "cifar10", "signs")

from benchmarks.report import bad_input, report  # noqa: E402


def find_set(name):
  """(name, folder) for a set named on the command line; exits with one line when there is none."""
  for folder in (pathlib.Path(name), SHARED_DATA / name, SHARED_DATA / "panel" / name):
    if (folder / "train").is_dir() and (folder / "val").is_dir():
      return folder.name if folder != pathlib.Path(name) else str(folder), folder.resolve()
  bad_input(f"{name}: no photo set with train/ and val/ class folders there, in {SHARED_DATA} or in "
           f"{SHARED_DATA / 'panel'} (python benchmarks/panel.py rebuilds the panel)")


def fingerprint(folder):
  """What the plain script's cached rows depend on in a folder: its files' names and sizes."""
  digest = hashlib.sha256()
  for path in sorted(folder.rglob("*")):
    if path.is_file():
      digest.update(f"{path.relative_to(folder)}:{path.stat().st_size}\n".encode())
  return digest.hexdigest()[:16]


def plain(images, size, seconds, seed, started):
  """Trains and evaluates the plain script in this process; returns its result row."""
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


def run_plain(images, size, minutes, seed):
  started = time.time()
  child = subprocess.run([sys.executable, __file__, "--plain", str(images), str(size), str(minutes * 60), str(seed)],
                         check=True, capture_output=True, text=True, env={**os.environ, "BENCH_STARTED": str(started)})
  return {"size": size, **json.loads(child.stdout.strip().splitlines()[-1])}


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
  progressive = config["progressive"]
  sizes = sorted({progressive["image_size_min"], progressive["image_size_max"]}) if progressive["stages"] > 1 else \
      [progressive["image_size_max"]]
  return {"top1": round(evals[-1]["top1"], 4), "size": "-".join(map(str, sizes)), "eval_size": config["eval"]["image_size"],
          "epochs": round(config["train"]["epochs"], 2), "stages": progressive["stages"],
          "augment": config["augment"]["policy"], "seconds": round(seconds, 1),
          "refits": done.stdout.count("(refitted at step ")}  # how often the budget refitted the run's length


class PlainCache:
  """The plain script's rows by (set fingerprint, minutes, size, seed), kept across runs of this benchmark."""

  def __init__(self, path):
    self.path = path
    self.rows = json.loads(path.read_text()) if path.exists() else {}
    self.fingerprints = {}  # {folder: fingerprint}, each folder read once

  def get(self, images, minutes, size, seed):
    if images not in self.fingerprints:
      self.fingerprints[images] = fingerprint(images)
    key = f"{self.fingerprints[images]}|{minutes:g}|{size}|{seed}"
    if key not in self.rows:
      self.rows[key] = run_plain(images, size, minutes, seed)
      self.path.parent.mkdir(parents=True, exist_ok=True)
      self.path.write_text(json.dumps(self.rows, indent=1))
    return self.rows[key]


def spread(rows):
  top1 = [row["top1"] for row in rows]
  return {"median": round(statistics.median(top1), 4), "min": min(top1), "max": max(top1), "n": len(top1)}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--sets", default="imagenette,flowers")
  parser.add_argument("--minutes", type=float, default=10.0)
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--plain_sizes", default="128,192,224", help="the plain script's sizes, tried on seed 0")
  parser.add_argument("--routes", default="ours,plain", choices=("ours,plain", "ours", "plain"))
  parser.add_argument("--quick", action="store_true", help="2 minutes (start-up and timing the step take "
                      "most of one on a slow CPU), seed 0, imagenette, the plain script at 128 px")
  parser.add_argument("--plain", nargs=4, metavar=("IMAGES", "SIZE", "SECONDS", "SEED"), help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.plain:  # the child process of one plain run
    images, size, seconds, seed = args.plain
    print(json.dumps(plain(images, int(size), float(seconds), int(seed), float(os.environ["BENCH_STARTED"]))))
    return
  if args.quick:
    args.minutes, args.seeds, args.sets, args.plain_sizes = 2.0, "0", "imagenette", "128"
  sets = [find_set(name) for name in args.sets.split(",")]
  seeds = [int(seed) for seed in args.seeds.split(",")]
  plain_sizes = [int(size) for size in args.plain_sizes.split(",")]
  cache = PlainCache(PLAIN_CACHE)
  from effnetv2_tf.data.convert import convert
  rows, table = [], []
  with tempfile.TemporaryDirectory() as scratch:
    for name, images in sets:
      records = os.path.join(scratch, name.replace("/", "_"))
      if "ours" in args.routes:
        convert(images, records)
      best = None
      for seed in seeds:
        if "ours" in args.routes:
          rows.append({"set": name, "seed": seed, "route": "ours",
                       **ours(records, os.path.join(scratch, f"run-{len(rows)}"), args.minutes, seed)})
          print(rows[-1], flush=True)
        if "plain" not in args.routes:
          continue
        if best is None:  # the user's choice of size: each tried on seed 0, the best kept
          tried = [cache.get(images, args.minutes, size, 0) for size in plain_sizes]
          best = max(tried, key=lambda row: row["top1"])["size"]
          rows += [{"set": name, "seed": 0, "route": f"plain@{row['size']}", **row} for row in tried]
          print(rows[-len(tried):], flush=True)
        rows.append({"set": name, "seed": seed, "route": "plain", **cache.get(images, args.minutes, best, seed)})
        print(rows[-1], flush=True)
      summary = {route: spread([row for row in rows if row["set"] == name and row["route"] == route])
                 for route in args.routes.split(",")}
      line = {"set": name, "tuned_on": "yes" if name in TUNED_ON else "no"}
      for route, values in summary.items():
        size = next(row["size"] for row in rows if row["set"] == name and row["route"] == route)
        line[route] = f"{values['median']:.3f} ({values['min']:.3f}-{values['max']:.3f}) @{size}"
      if len(summary) == 2:
        line["lead"] = f"{100 * (summary['ours']['median'] - summary['plain']['median']):+.1f}"
      table.append(line)
  columns = ["set", "tuned_on", *args.routes.split(","), *(["lead"] if "lead" in table[0] else [])]
  report(table, columns, RESULTS / f"own_photos_{args.minutes:g}min.json", minutes=args.minutes, seeds=seeds,
         plain_sizes=plain_sizes, runs=rows)


if __name__ == "__main__":
  main()
