"""The plan against the run it plans: `python main.py --plan`, then the same command without --plan in the same
folder, per case and round. A run with a plan.json prints each stage's time beside the plan's ("stage N done in
X s (planned Y s)"): the training time is their sum, the ratio actual / planned per round, medians over rounds.
The issue's bar: within 20%.

  python benchmarks/plan.py [--cases demo,imagenette] [--rounds 3] [--engine tf]

Cases (the commands as a user types them, --model_dir aside):
  demo         python main.py                                   the demo: its photos, its settings
  imagenette   python main.py --hparams=photos-b0 --data_dir=RECORDS --hparam_str=train.epochs=2
               imagenette's 4,000 training photos (../shared/data), converted once per benchmark run
Writes benchmarks/results/plan.json.
"""

import argparse
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
IMAGENETTE = ROOT.parent / "shared" / "data" / "imagenette"
STAGE_LINE = re.compile(r"stage (\d+) done in ([\d.]+) s \(planned ([\d.]+) s\)")

from benchmarks.report import bad_input, report  # noqa: E402


def case_args(case, records):
  if case == "demo":
    return []
  return ["--hparams=photos-b0", f"--data_dir={records}", "--hparam_str=train.epochs=2"]


def main_py(args):
  started = time.perf_counter()
  done = subprocess.run([sys.executable, str(ROOT / "main.py"), *args], cwd=ROOT, capture_output=True, text=True)
  if done.returncode != 0:
    sys.exit(f"main.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
  return done.stdout, time.perf_counter() - started


def one_round(case, engine, records, folder):
  """A row: the plan's and the run's training seconds (their stages), and each process's wall time."""
  args = [f"--engine={engine}", f"--model_dir={folder}", *case_args(case, records)]
  planned_out, plan_wall = main_py(["--plan", *args])
  run_out, run_wall = main_py(args)
  stages = [(int(index), float(actual), float(planned)) for index, actual, planned in STAGE_LINE.findall(run_out)]
  if not stages:
    sys.exit(f"the {case} run printed no stage line with its plan's time:\n{run_out[-3000:]}")
  total = re.search(r"^total: (.*?) on ", planned_out, re.M).group(1)
  actual, planned = sum(s[1] for s in stages), sum(s[2] for s in stages)
  return {"case": case, "engine": engine, "stages": len(stages), "planned s": round(planned, 1),
          "actual s": round(actual, 1), "actual/planned": round(actual / planned, 3),
          "plan total": total, "plan process s": round(plan_wall, 1), "run process s": round(run_wall, 1)}


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--cases", default="demo,imagenette")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--engine", default="tf")
  parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "plan.json"))
  args = parser.parse_args()
  cases = args.cases.split(",")
  if set(cases) - {"demo", "imagenette"}:
    bad_input(f"--cases {args.cases}: choose of demo, imagenette")
  if "imagenette" in cases and not IMAGENETTE.is_dir():
    bad_input(f"{IMAGENETTE} is missing: the imagenette case needs the shared photos")
  rows = []
  with tempfile.TemporaryDirectory(prefix="plan-") as scratch:
    records = pathlib.Path(scratch) / "imagenette"
    if "imagenette" in cases:
      subprocess.run([sys.executable, "-m", "effnetv2_tf.data.convert", str(IMAGENETTE), str(records)], cwd=ROOT,
                     check=True, capture_output=True)
    for index in range(args.rounds):
      for case in cases:
        rows.append(one_round(case, args.engine, records, pathlib.Path(scratch) / f"{case}-{index}"))
        print(rows[-1], flush=True)
  summary = {case: statistics.median(row["actual/planned"] for row in rows if row["case"] == case) for case in cases}
  print("median actual/planned: " + ", ".join(f"{case} {ratio:.3f}" for case, ratio in summary.items()))
  report(rows, ["case", "engine", "stages", "planned s", "actual s", "actual/planned", "plan total",
                "plan process s", "run process s"], args.output, median_actual_over_planned=summary,
         date=time.strftime("%Y-%m-%d"), machine=f"{os.cpu_count()}-core CPU")


if __name__ == "__main__":
  main()
