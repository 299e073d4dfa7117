"""The JAX engine's train step on an accelerator, next to timm's training step of the same architecture.

For a borrowed GPU machine that has JAX, PyTorch and timm but no TensorFlow: our JaxState (the JAX engine's
compiled step: RMSProp, EMA over weights and BN statistics, weight decay, label smoothing) imports without
TensorFlow. Each measurement runs in a process of its own (JAX and PyTorch would share the GPU's memory): a batch
made on the device once, one compiling call, then timed calls of `--steps` steps, the median of `--rounds`; peak
device memory as each framework's allocator reports it; for ours also what XLA's memory analysis of the compiled
step gives at that batch (what the plan reads the largest batch off) and the largest batch the plan would name
(main.py --plan's rule: the analysis at 8 and 16 images, 90% of the device's memory). timm's step:
`tf_efficientnetv2_b0` / `_s` (the same architecture; TF "same" padding emulated), bfloat16 autocast, channels_last, timm's RMSpropTF, label smoothing
0.1. Both in bfloat16 with float32 weights. Each measurement gets at most --part_seconds (150: 10 minutes for all
four). Writes benchmarks/results/accelerator.json.

  python benchmarks/accelerator.py               # B0 at 224 px (batch 256), S at 300 px (batch 128)
  python benchmarks/accelerator.py --quick       # B0 only, at 64 px, batch 8, a few steps (any machine)
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

CASES = {"b0": ("efficientnetv2-b0", "tf_efficientnetv2_b0", 224, 256),
         "s": ("efficientnetv2-s", "tf_efficientnetv2_s", 300, 128)}


def time_calls(call, rounds):
  """Seconds of the first call (compiling) and the median of `rounds` further calls."""
  start = time.perf_counter()
  call()
  first = time.perf_counter() - start
  times = []
  for _ in range(rounds):
    start = time.perf_counter()
    call()
    times.append(time.perf_counter() - start)
  return first, statistics.median(times)


def measure_ours(model, size, batch, steps, rounds):
  """The JAX engine's step (JaxState's host loop) in bfloat16 on this process's devices."""
  os.environ["KERAS_BACKEND"] = "jax"
  import jax
  import keras
  import numpy as np

  from effnetv2_tf import hparams
  from effnetv2_tf.engines.jax.state import JaxState
  from effnetv2_tf.train.schedule import run_plan
  keras.mixed_precision.set_global_policy("mixed_bfloat16")
  name = model.split("-")[1]
  config = hparams.resolve(hparams.override(hparams.get_config(f"imagenet-{name}"),
                                            f"train.batch_size={batch},eval.batch_size={batch}"))
  steps_per_epoch, schedule = run_plan(config)
  state = JaxState(config, schedule.total_steps, steps_per_epoch)
  rng = np.random.default_rng(0)
  images = rng.normal(size=(batch, size, size, 3)).astype(jax.numpy.bfloat16)  # as the input pipeline hands it
  labels = np.eye(config.model.num_classes, dtype="float32")[rng.integers(0, config.model.num_classes, batch)]
  on_device = jax.device_put((images, labels), state._split)  # placed once: the step's device_put is then a no-op

  class Repeat:
    def __next__(self):
      return on_device

  dropout = schedule.stages[0].dropout_rate
  loop = state.train_loop(dropout)
  first, seconds = time_calls(lambda: loop(Repeat(), steps), rounds)
  stats = jax.local_devices()[0].memory_stats() or {}
  devices = jax.device_count()
  analysed = state.step_memory(dropout, size, batch, "bfloat16")
  largest = None
  if "bytes_limit" in stats and analysed is not None:
    from effnetv2_tf.train.plan import fitting_batch
    largest = fitting_batch(lambda count: state.step_memory(dropout, size, count * devices, "bfloat16"),
                            stats["bytes_limit"])[0]
  return {"framework": "ours (Keras 3 on JAX)", "devices": devices, "device": jax.devices()[0].device_kind,
          "first call s": round(first, 1), "img/s": round(batch * steps / seconds, 1),
          "peak GiB": round(stats["peak_bytes_in_use"] / 2**30, 2) if "peak_bytes_in_use" in stats else None,
          "analysed GiB": round(analysed / 2**30, 2) if analysed is not None else None,
          "largest batch/device": largest}


def measure_timm(model, size, batch, steps, rounds):
  """timm's training step of the same architecture: bfloat16 autocast, channels_last, RMSpropTF."""
  import timm
  import timm.optim
  import torch
  device = "cuda" if torch.cuda.is_available() else "cpu"
  net = timm.create_model(model, num_classes=1000).to(device).to(memory_format=torch.channels_last)
  optimizer = timm.optim.RMSpropTF(net.parameters(), lr=0.016 * batch / 256, alpha=0.9, momentum=0.9, eps=1e-3,
                                   weight_decay=1e-5)
  loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
  images = torch.randn(batch, 3, size, size, device=device).to(memory_format=torch.channels_last)
  labels = torch.randint(0, 1000, (batch,), device=device)

  def run():
    for _ in range(steps):
      with torch.autocast(device_type=device, dtype=torch.bfloat16):
        loss = loss_fn(net(images), labels)
      optimizer.zero_grad(set_to_none=True)
      loss.backward()
      optimizer.step()
    loss.item()  # waits for the device

  first, seconds = time_calls(run, rounds)
  peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
  return {"framework": f"timm {timm.__version__} (PyTorch {torch.__version__})", "devices": 1,
          "device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "first call s": round(first, 1),
          "img/s": round(batch * steps / seconds, 1), "peak GiB": round(peak, 2) if peak else None}


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--quick", action="store_true", help="B0 at 64 px, batch 8, 2 rounds of 2 steps")
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--part_seconds", type=int, default=150, help="the longest one measurement may take (4 in all)")
  parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "accelerator.json"))
  parser.add_argument("--worker", help=argparse.SUPPRESS)  # ours|timm,CASE,SIZE,BATCH: one measurement, as JSON
  args = parser.parse_args()
  if args.worker:
    part, case, size, batch = args.worker.split(",")
    ours, theirs, _, _ = CASES[case]
    measure = measure_ours if part == "ours" else measure_timm
    print("RESULT " + json.dumps(measure(ours if part == "ours" else theirs, int(size), int(batch), args.steps,
                                         args.rounds)))
    return

  from benchmarks.report import report
  cases = {"b0": (*CASES["b0"][:2], 64, 8)} if args.quick else CASES
  steps, rounds = (2, 2) if args.quick else (args.steps, args.rounds)
  rows = []
  for case, (ours, theirs, size, batch) in cases.items():
    for part in ("ours", "timm"):
      try:  # a part that hangs must leave time for the others: a borrowed machine's minutes are few
        done = subprocess.run([sys.executable, __file__, f"--worker={part},{case},{size},{batch}", f"--steps={steps}",
                               f"--rounds={rounds}"], capture_output=True, text=True, timeout=args.part_seconds)
      except subprocess.TimeoutExpired:
        done = subprocess.CompletedProcess([], 1, "", f"timed out after {args.part_seconds} s")
      row = {"model": ours if part == "ours" else theirs, "size": size, "batch": batch}
      if done.returncode:
        print(f"{part} {case}: failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}",
              flush=True)
        row.update({"framework": part, "img/s": None, "peak GiB": None, "first call s": None,
                    "error": done.stderr[-2000:]})
      else:
        row.update(json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))[7:]))
      rows.append(row)
      print(row, flush=True)
  report(rows, ["model", "framework", "size", "batch", "img/s", "peak GiB", "analysed GiB", "largest batch/device",
                "first call s"], args.output,
         benchmark="accelerator", steps=steps, rounds=rounds)


if __name__ == "__main__":
  main()
