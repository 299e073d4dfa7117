"""Time to the first batch when a run resumes inside a stage, by how far into the stage it resumes.

Converts real photos (default ../shared/data/imagenette/train, 4,000 images) to TFRecords once, then builds
the training dataset of a stage resumed 0, 1, 10 and 40 epochs in (batch 64, 128 px, RandAugment off) and
times the first batch, median of --rounds. The resumed stream must equal an uninterrupted one (the trainer's
resume tests check that); this measures what it costs. Writes benchmarks/results/resume[-LABEL].json.

  python benchmarks/resume.py [--quick] [--images DIR] [--label before]
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

from benchmarks.report import bad_input, report  # noqa: E402
from effnetv2_tf.data.convert import convert  # noqa: E402
from effnetv2_tf.data.pipeline import Preprocessing, train_dataset  # noqa: E402
from effnetv2_tf.data.sources import TFRecordSource  # noqa: E402

BATCH = 64


def first_batch_seconds(source, skip_steps):
  started = time.perf_counter()
  dataset = train_dataset(source, Preprocessing(128, "center_128"), batch_size=BATCH,
                          num_classes=10, seed=0, skip_steps=skip_steps)
  next(iter(dataset))
  return time.perf_counter() - started


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--images", default=str(ROOT.parent / "shared" / "data" / "imagenette" / "train"))
  parser.add_argument("--quick", action="store_true", help="one round, up to 10 epochs")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--label", default="", help="tags the JSON file, e.g. before / after a change")
  args = parser.parse_args()
  if not pathlib.Path(args.images).is_dir():
    bad_input(f"No images at {args.images}: pass --images DIR (CLASS/*.jpg).")
  epochs_into_stage, rounds = ((0, 1, 10), 1) if args.quick else ((0, 1, 10, 40), args.rounds)
  output = ROOT / "benchmarks" / "results" / f"resume{'-' + args.label if args.label else ''}.json"

  with tempfile.TemporaryDirectory() as records:
    summary = convert(args.images, records, shards=8)
    examples = summary["written"]["train"]
    source = TFRecordSource(str(pathlib.Path(records) / "train-*"))
    rows = []
    for epochs in epochs_into_stage:
      skip_steps = round(epochs * examples / BATCH)
      seconds = statistics.median(first_batch_seconds(source, skip_steps) for _ in range(rounds))
      rows.append({"epochs into stage": epochs, "steps skipped": skip_steps, "records": examples,
                   "first batch (s)": round(seconds, 2)})
      print(rows[-1], flush=True)
  one_epoch = next(row["first batch (s)"] for row in rows if row["epochs into stage"] == 1)
  for row in rows:
    row["vs 1 epoch"] = round(row["first batch (s)"] / one_epoch, 2)
  report(rows, ["epochs into stage", "steps skipped", "first batch (s)", "vs 1 epoch"], output,
         benchmark="resume", label=args.label, cores=os.cpu_count(), batch=BATCH)


if __name__ == "__main__":
  main()
