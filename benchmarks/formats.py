"""Every export format of one trained run, side by side: top-1 on the run's whole val split, file size and CPU
latency per image (batch 1, median of --repeats after a warm-up) in the runtime that reads it.

Exports the run's latest checkpoint with main.py's export (every format; litert-int8 calibrated on its training
photos, nothing refused), then feeds each file the same eval-cropped val photos: Keras (TensorFlow, the
classification SavedModel's model), ONNX under onnxruntime, the four LiteRT files under ai-edge-litert's
interpreter. Writes benchmarks/results/formats[-LABEL].json.

  python benchmarks/formats.py --model_dir runs/flowers-b0 --data_dir flowers_records [--repeats 50]
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
from effnetv2_tf.quiet_start import import_tensorflow  # noqa: E402

tf = import_tensorflow()
import numpy as np  # noqa: E402

FORMATS = ("saved_model", "onnx", "litert", "litert-float16", "litert-dynamic-int8", "litert-int8")


def _size_mb(path):
  path = pathlib.Path(path)
  files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
  return round(sum(p.stat().st_size for p in files) / 1e6, 2)


def _latency_ms(predict_one, image, repeats):
  predict_one(image)  # warm-up (and, for TensorFlow, the trace)
  times = []
  for _ in range(repeats):
    started = time.perf_counter()
    predict_one(image)
    times.append(time.perf_counter() - started)
  return round(1000 * statistics.median(times), 2)


def _runners(export_dir, written):
  """{format: images -> logits} for each written file, in the runtime that reads it (export.onnx and
  export.litert's runners: a session or interpreter made once), and the SavedModel under TensorFlow."""
  from effnetv2_tf.export import litert, onnx
  serve = tf.saved_model.load(str(pathlib.Path(export_dir) / "classification")).signatures["serving_default"]
  runners = {"saved_model": lambda images: serve(images=tf.constant(images))["logits"].numpy()}
  for item in written:
    if item.name == "onnx":
      runners["onnx"] = onnx.runner(item.paths[0])
    elif item.name.startswith("litert"):
      runners[item.name] = litert.runner(item.paths[0])
  return runners


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--model_dir", required=True, help="a finished run of ours")
  parser.add_argument("--data_dir", required=True, help="its TFRecords (val for top-1, train for litert-int8)")
  parser.add_argument("--repeats", type=int, default=50, help="timed single-image calls per format")
  parser.add_argument("--label", default="", help="suffix of the JSON file's name")
  args = parser.parse_args()
  if not (pathlib.Path(args.model_dir) / "config.yaml").exists():
    bad_input(f"{args.model_dir} holds no run (config.yaml): give --model_dir of a finished run.")
  from effnetv2_tf import jobs
  from effnetv2_tf.export import photos, writer
  from effnetv2_tf.model import get_model_spec
  from effnetv2_tf.run_dir import RunDir
  from effnetv2_tf.train.run_data import eval_source
  run_dir = RunDir(args.model_dir)
  config = jobs.run_config(run_dir, "", "export")
  spec = get_model_spec(config.model.name)
  size = config.eval.image_size
  with tempfile.TemporaryDirectory() as scratch:
    export_dir = os.path.join(scratch, "export")
    step, written = writer.export_run(run_dir, config, export_dir, formats=FORMATS, data_dir=args.data_dir,
                                      allow_accuracy_drop=True)
    images, labels = photos.labelled_photos(eval_source(config, args.data_dir), size, spec.normalization,
                                            config.model.num_classes, limit=1_000_000)
    runners = _runners(export_dir, written)
    rows = []
    for item in written:
      run = runners[item.name]
      logits = np.concatenate([run(images[i:i + 64]) for i in range(0, len(images), 64)])
      path = item.paths[0] if item.name != "saved_model" else os.path.join(export_dir, "classification")
      rows.append({"format": item.name, "runtime": "tensorflow" if item.name == "saved_model" else
                   "onnxruntime" if item.name == "onnx" else "ai-edge-litert",
                   "top1": round(float(np.mean(np.argmax(logits, -1) == labels)), 4),
                   "size_mb": _size_mb(path), "ms_per_image": _latency_ms(run, images[:1], args.repeats)})
  report(rows, ["format", "runtime", "top1", "size_mb", "ms_per_image"],
         ROOT / "benchmarks" / "results" / f"formats{'-' + args.label if args.label else ''}.json",
         model=config.model.name, step=step, image_size=size, val_images=len(labels), repeats=args.repeats,
         model_dir=args.model_dir, data_dir=args.data_dir, date=time.strftime("%Y-%m-%d"))


if __name__ == "__main__":
  main()
