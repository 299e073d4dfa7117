"""Train-step throughput of the two engines: TensorFlow's and Keras 3 on JAX, the same model and recipe.

Each measurement is a process of its own (Keras loads one backend per process): the engine's real host loop
(RMSProp, EMA, weight decay, label smoothing) on one synthetic batch repeated, after a first loop that compiles.
Processes alternate between the engines round by round, so the machine's speed drifts hit both alike; medians
of the rounds are reported. The TF engine runs as main.py would on this machine (on the CPU: graph, no XLA);
the JAX engine always compiles with XLA. Writes benchmarks/results/engines.json.

  python benchmarks/engines.py            # B0 at 128 and 224 px, batch 32, 3 rounds
  python benchmarks/engines.py --quick    # B0 at 128 px, 2 rounds
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def measure(name, model, size, batch_size, steps):
  """img/s of `steps` steps of the engine `name`'s host loop (after one compiling loop), in this process."""
  from effnetv2_tf import engines
  engine, launch = engines.get(name), engines.Launch(strategy="default")
  os.environ["KERAS_BACKEND"] = engine.keras_backend
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  import dataclasses

  import numpy as np
  import tensorflow as tf

  from effnetv2_tf import hparams
  from effnetv2_tf.train.schedule import run_plan
  config = hparams.resolve(hparams.override(hparams.get_config("demo"), f"model.name={model},model.width=1.0,"
                                            f"model.depth=1.0,train.batch_size={batch_size},eval.batch_size={batch_size}"))
  runner = engine.engine_class()(config, engine.runtime(launch))
  rng = np.random.default_rng(0)
  images = rng.normal(size=(batch_size, size, size, 3)).astype("float32")
  labels = np.eye(config.model.num_classes, dtype="float32")[rng.integers(0, config.model.num_classes, batch_size)]
  batches = runner.batches(lambda context: tf.data.Dataset.from_tensors((images, labels)).repeat())
  loop = runner.train_loop(dataclasses.replace(run_plan(config)[1].stages[0], image_size=size))
  start = time.perf_counter()
  loop(batches, 1)
  compile_seconds = time.perf_counter() - start
  start = time.perf_counter()
  loop(batches, steps)
  return {"img/s": batch_size * steps / (time.perf_counter() - start), "first loop s": compile_seconds}


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--quick", action="store_true", help="128 px only, 2 rounds of 3 steps")
  parser.add_argument("--model", default="efficientnetv2-b0")
  parser.add_argument("--batch_size", type=int, default=32)
  parser.add_argument("--rounds", type=int)
  parser.add_argument("--steps", type=int)
  parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "engines.json"))
  parser.add_argument("--worker", help=argparse.SUPPRESS)  # ENGINE,SIZE,STEPS: one measurement, as JSON
  args = parser.parse_args()
  if args.worker:
    engine, size, steps = args.worker.split(",")
    print("RESULT " + json.dumps(measure(engine, args.model, int(size), args.batch_size, int(steps))))
    return

  from benchmarks.report import report
  from effnetv2_tf.engines import NAMES
  sizes = [128] if args.quick else [128, 224]
  rounds = args.rounds or (2 if args.quick else 3)
  steps = args.steps or (3 if args.quick else 5)
  measured = {(engine, size): [] for engine in NAMES for size in sizes}
  for round_index in range(rounds):
    for size in sizes:
      for engine in NAMES if round_index % 2 == 0 else NAMES[::-1]:
        done = subprocess.run([sys.executable, __file__, f"--worker={engine},{size},{steps}", f"--model={args.model}",
                               f"--batch_size={args.batch_size}"], capture_output=True, text=True, check=True)
        result = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))[7:])
        measured[engine, size].append(result)
        print(f"round {round_index + 1}: {engine} {size} px {result['img/s']:.1f} img/s "
              f"(first loop {result['first loop s']:.1f} s)", flush=True)
  rows = []
  for size in sizes:
    row = {"model": args.model, "size": size, "batch": args.batch_size}
    for engine in NAMES:
      row[f"{engine} img/s"] = round(statistics.median(r["img/s"] for r in measured[engine, size]), 1)
      row[f"{engine} first loop s"] = round(statistics.median(r["first loop s"] for r in measured[engine, size]), 1)
    for engine in NAMES[1:]:  # each against the first (TensorFlow's)
      row[f"{engine}/{NAMES[0]}"] = round(row[f"{engine} img/s"] / row[f"{NAMES[0]} img/s"], 2)
    rows.append(row)
  report(rows, ["model", "size", "batch", *(f"{engine} img/s" for engine in NAMES),
                *(f"{engine}/{NAMES[0]}" for engine in NAMES[1:]), *(f"{engine} first loop s" for engine in NAMES)],
         args.output, benchmark="engines", device="cpu", rounds=rounds, steps=steps)


if __name__ == "__main__":
  main()
