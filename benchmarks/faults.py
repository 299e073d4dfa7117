"""Issue #45's fault probe, rerun: each of its reproductions as a user meets it, with its exit status, the lines on
stderr, the tracebacks among them, whether the line a user needs is there, and what of the run was lost.

  python benchmarks/faults.py [--only NAME[,NAME...]] [--out benchmarks/results/faults.json]

Every case runs the real command (main.py, the converter, predict) in a process of its own: the TensorFlow cases
with the CPU stack's Python (.ci/venv), the JAX cases with the JAX stack's (.ci/venv-jax), the export of a JAX run
in the TensorFlow-only install with the former. A full disk and a read-only folder need a tmpfs of their own, so
those cases need root (they say so and are skipped otherwise). About 10 minutes on 2 CPU cores.

A verdict per case: "ok" (it works and says what it did), "one line" (refused in one line, exit 2, 75 or 130),
"traceback", "silent" (the line a user needs is missing), "lost" (a file of the run is gone) or "hang".
"""

import argparse
import contextlib
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import effnetv2_tf  # noqa: E402,F401 -- first: TensorFlow's start-up banner stays out of the console
from tests.helpers import TWO_STAGES  # noqa: E402 -- the fault tests' run: 12 steps in 2 stages

TF_PYTHON = ROOT / ".ci" / "venv" / "bin" / "python"
JAX_PYTHON = ROOT / ".ci" / "venv-jax" / "bin" / "python"
PYTHON = {"tf": TF_PYTHON, "jax": JAX_PYTHON}  # each engine's stack
FLOWERS = ROOT.parent / "shared" / "data" / "flowers"
TRACEBACK = "Traceback (most recent call last)"
# A JAX run with a checkpoint every 2 steps, so that an older one is there to fall back to.
JAX_RUN = TWO_STAGES.replace("runtime.checkpoint_steps=6", "runtime.checkpoint_steps=2")


class Probe:
  """The workspace of one probe: the demo's records, a finished run of each engine to copy, the results."""

  def __init__(self, work):
    self.work = pathlib.Path(work)
    self.rows = []
    self._base = {}

  def command(self, python, *args, timeout=600, signals=(), env=None):
    """(exit status or "hang", stdout, stderr, seconds) of `python args` from the repository; `signals`:
    [(seconds after start, a text on stdout or stderr to wait for (then, as (text, seconds), so long more), or a
    function that says when, signal)] sent in order."""
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
      process = subprocess.Popen([str(python), *map(str, args)], cwd=ROOT, stdout=out, stderr=err,
                                 env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
      for when, sent in signals:
        when, delay = when if isinstance(when, tuple) else (when, 0)
        while process.poll() is None and not _reached(when, started, out, err):
          time.sleep(0.2)
        time.sleep(delay)
        if process.poll() is None:
          process.send_signal(sent)
      try:
        code = process.wait(timeout=max(timeout - (time.monotonic() - started), 1))
      except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        code = "hang"
      out.seek(0)
      err.seek(0)
      return code, out.read(), err.read(), time.monotonic() - started

  def main_py(self, python, *args, **kwargs):
    return self.command(python, "main.py", *args, **kwargs)

  @property
  def records(self):
    path = self.work / "demo_records"
    if not (path / "dataset.json").exists():
      code, _, err, _ = self.command(TF_PYTHON, "-m", "effnetv2_tf.data.convert", ROOT / "effnetv2_tf" / "demo_data",
                                     path)
      assert code == 0, err
    return path

  def base_run(self, engine):
    """A copy of a finished run of `engine` (trained once per probe) in a new folder."""
    if engine not in self._base:
      path = self.work / f"base_{engine}"
      code, _, err, _ = self.main_py(PYTHON[engine], f"--engine={engine}",
                                     "--mode=train", f"--model_dir={path}", f"--data_dir={self.records}",
                                     f"--hparam_str={JAX_RUN}")
      assert code == 0, err[-3000:]
      self._base[engine] = path
    copy = self.work / f"{engine}_{len(self.rows)}"
    shutil.copytree(self._base[engine], copy)
    return copy

  def record(self, item, name, result, needs, before=None, run=None, expect=(0,)):
    """Adds the row of a case: `needs`, the words the user must be told (in stdout or stderr); `before`, the
    files of `run` before it ({relative path: size}), none of which may be gone (moved aside is kept)."""
    code, out, err, seconds = result
    lines = [line for line in err.splitlines() if line.strip()]
    lost = _lost(before, _files(run)) if before is not None else []
    tracebacks = err.count(TRACEBACK)
    said = all(words in out + err for words in needs)
    if code == "hang":
      verdict = "hang"
    elif tracebacks:
      verdict = "traceback"
    elif lost:
      verdict = "lost"
    elif not said or code not in expect:
      verdict = "silent"
    else:
      verdict = "ok" if code == 0 else "one line"
    row = {"item": item, "case": name, "verdict": verdict, "exit": code, "stderr_lines": len(lines),
           "tracebacks": tracebacks, "lost": lost[:5], "seconds": round(seconds, 1),
           "last_line": (lines[-1] if lines else out.strip().splitlines()[-1] if out.strip() else "")[:300]}
    if verdict not in ("ok", "one line"):  # what to look at
      row["stderr_tail"] = err[-3000:]
    self.rows.append(row)
    print(f"{item:>3} {name:<44} {verdict:<9} exit {code!s:<4} {len(lines):>4} lines {tracebacks} tracebacks "
          f"{seconds:5.0f} s  {row['last_line'][:90]}", flush=True)
    return row


def _reached(when, started, *outputs):
  """Whether `when` has come: a text on stdout or stderr, `when()` true, or seconds since `started`."""
  if callable(when):
    return when()
  if isinstance(when, str):
    found = False
    for output in outputs:
      output.seek(0)
      found = found or when in output.read()
      output.seek(0, os.SEEK_END)
    return found
  return time.monotonic() - started >= when


def _files(folder):
  folder = pathlib.Path(folder)
  return {str(path.relative_to(folder)): path.stat().st_size for path in folder.rglob("*") if path.is_file()}


def _lost(before, after):
  """The files of `before` neither in place nor moved aside (damaged/, diverged/: the same path under them)."""
  return sorted(path for path in before
                if path not in after and not any(other.endswith("/" + path.split("/", 1)[-1]) for other in after))


@contextlib.contextmanager
def tmpfs(folder, size):
  """A tmpfs of `size` at `folder` (root only; _read_only makes it read-only)."""
  folder.mkdir(parents=True, exist_ok=True)
  subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)
  try:
    yield folder
  finally:
    subprocess.run(["umount", "-l", str(folder)], check=False)


def _read_only(folder):
  subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def newest_checkpoint(run):
  return max((run / "checkpoints").glob("ckpt_*"), key=lambda path: int(path.name.split("_")[1]))


# 1. A damaged newest JAX checkpoint: the rerun sets it aside and goes on from the one before.
def damaged_jax_checkpoint(probe):
  for how in ("cut", "deleted"):
    run = probe.base_run("jax")
    newest = newest_checkpoint(run)
    data = sorted(path for path in newest.rglob("*") if path.is_file() and "/d/" in str(path))[0]
    data.unlink() if how == "deleted" else os.truncate(data, 1000)
    before = _files(run)
    result = probe.main_py(JAX_PYTHON, "--engine=jax", "--mode=train", f"--model_dir={run}",
                           f"--data_dir={probe.records}", f"--hparam_str={JAX_RUN}")
    probe.record(1, f"jax newest checkpoint's array file {how}", result, [f"{newest.name} cannot be read back"],
                 before, run)


# 2. A full disk during a JAX save.
def full_disk_jax(probe):
  with tmpfs(probe.work / "full", "6m") as disk:
    result = probe.main_py(JAX_PYTHON, "--engine=jax", "--mode=train_and_eval", f"--model_dir={disk / 'run'}",
                           f"--data_dir={probe.records}", f"--hparam_str={JAX_RUN}")
    probe.record(2, "jax save on a full disk", result, ["No space left on device"], expect=(2,))


# 3. Several JAX processes started wrongly.
def jax_processes(probe):
  base = ["--engine=jax", "--mode=train", f"--data_dir={probe.records}", f"--hparam_str={JAX_RUN}",
          "--num_processes=2", "--join_seconds=20"]
  with socket.socket() as held:
    held.bind(("", 0))
    held.listen()
    port = held.getsockname()[1]
    result = probe.main_py(JAX_PYTHON, *base, f"--model_dir={probe.work / 'p1'}",
                           f"--coordinator_address=127.0.0.1:{port}", "--process_id=0")
  probe.record(3, "coordinator port in use", result, ["is in use on this host"], expect=(2,))
  result = probe.main_py(JAX_PYTHON, *base, f"--model_dir={probe.work / 'p2'}", "--coordinator_address=127.0.0.1",
                         "--process_id=0")
  probe.record(3, "coordinator address without a port", result, ["is not HOST:PORT"], expect=(2,))
  address = f"--coordinator_address=127.0.0.1:{_free_port()}"
  first = subprocess.Popen([JAX_PYTHON, "main.py", *base, f"--model_dir={probe.work / 'p3'}", address,
                            "--process_id=0"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  time.sleep(3)
  result = probe.main_py(JAX_PYTHON, *base, f"--model_dir={probe.work / 'p3'}", address, "--process_id=0")
  first_err = first.communicate(timeout=120)[1]
  code, out, err, seconds = result
  probe.record(3, "two processes with the same --process_id", (code, out, err, seconds), ["error:"],
               expect=(2,))
  probe.record(3, "  ... the first of them", (first.returncode, "", first_err, seconds), ["error:"], expect=(2,))


# 4. The export of a JAX run in the TensorFlow-only install.
def export_jax_run_without_jax(probe):
  run = probe.base_run("jax")
  result = probe.main_py(TF_PYTHON, "--mode=export", f"--model_dir={run}", f"--export_dir={probe.work / 'x4'}")
  probe.record(4, "export of a jax run without jax installed", result, ['pip install -e ".[jax]"'], expect=(2,))


# 5. Read-only destinations.
def read_only(probe):
  tf_run = probe.base_run("tf")
  with tmpfs(probe.work / "ro", "64m") as disk:
    shutil.copytree(tf_run, disk / "run")
    shutil.copytree(probe.records, disk / "records")
    _read_only(disk)
    before = _files(disk / "run")
    hp = f"--hparam_str={JAX_RUN}"
    cases = (
        ("new model_dir in a read-only folder", ["--mode=train", f"--model_dir={disk / 'new'}",
                                                 f"--data_dir={probe.records}", hp]),
        ("resume in a read-only model_dir", ["--mode=train", f"--model_dir={disk / 'run'}",
                                             f"--data_dir={probe.records}", hp, "--continue_with_new_settings"]),
        ("export into a read-only folder", ["--mode=export", f"--model_dir={tf_run}",
                                            f"--export_dir={disk / 'export'}"]))
    for name, args in cases:
      probe.record(5, name, probe.main_py(TF_PYTHON, *args), ["read-only"], before, disk / "run", expect=(2,))
    result = probe.command(TF_PYTHON, "-m", "effnetv2_tf.data.convert", ROOT / "effnetv2_tf" / "demo_data",
                           disk / "converted")
    probe.record(5, "converter into a read-only folder", result, ["read-only"], expect=(2,))


# 6. Data on a bucket with no network.
def unreachable_bucket(probe):
  result = probe.main_py(TF_PYTHON, "--mode=train", f"--model_dir={probe.work / 'gs'}",
                         "--data_dir=gs://nonexistent-bucket/x", f"--hparam_str={JAX_RUN}", timeout=180)
  probe.record(6, "--data_dir on gs:// without network", result, ["gs://nonexistent-bucket/x"], expect=(2,))


# 7. Settings without a meaning, and records that say nothing of their classes.
def nonsense_settings(probe):
  for setting, words in (("train.lr_base=-0.1", "train.lr_base"), ("train.ema_decay=2", "train.ema_decay"),
                         ("train.label_smoothing=1.5", "train.label_smoothing")):
    result = probe.main_py(TF_PYTHON, "--mode=train", f"--model_dir={probe.work / 's7'}",
                           f"--data_dir={probe.records}", f"--hparam_str={JAX_RUN},{setting}")
    probe.record(7, setting, result, [words], expect=(2,))
  run = probe.base_run("tf")
  bare = probe.work / "bare"
  bare.mkdir()
  for name in ("train", "val"):  # the demo's records of 2 of its 5 classes: its first two shards
    for shard in sorted(probe.records.glob(f"{name}-*"))[:2]:
      shutil.copy(shard, bare / shard.name)
  result = probe.main_py(TF_PYTHON, "--mode=eval", f"--model_dir={run}", f"--data_dir={bare}")
  probe.record(7, "eval on records without dataset.json or labels.txt", result, ["cannot be checked"])


# 8. A JAX step folder without its metadata.
def jax_step_without_metadata(probe):
  run = probe.base_run("jax")
  newest = newest_checkpoint(run)
  (newest / "_CHECKPOINT_METADATA").unlink()
  before = _files(run)
  result = probe.main_py(JAX_PYTHON, "--engine=jax", "--mode=train", f"--model_dir={run}",
                         f"--data_dir={probe.records}", f"--hparam_str={JAX_RUN}")
  saved_again = (run / "checkpoints" / newest.name / "_CHECKPOINT_METADATA").exists()
  row = probe.record(8, "jax step folder without its metadata", result, ["is not a complete checkpoint"],
                     before, run)
  row["saved_again_at_its_step"] = saved_again


# 9. The divergence advice, followed as printed, from lr_base=800.
def divergence_advice(probe):
  run = probe.work / "diverging"
  rate, rounds, extra, result = "800", 0, [], None
  while rounds < 8:
    rounds += 1
    result = probe.main_py(TF_PYTHON, "--mode=train", f"--model_dir={run}", f"--data_dir={probe.records}",
                           f"--hparam_str={JAX_RUN},train.lr_base={rate}", *extra)
    advice = re.search(r"train\.lr_base=([0-9.e+-]+?)[,)]", result[2])
    if result[0] == 0 or not advice:
      break
    rate, extra = advice.group(1), ["--continue_with_new_settings"]
  row = probe.record(9, "lr_base=800, the advice followed", result, ["top-1"])
  diverged = run / "diverged"
  row.update(rounds=rounds, last_rate=rate,
             diverged_mb=round(sum(_files(diverged).values()) / 1e6, 1) if diverged.exists() else 0)


# 10. The small ones.
def small_items(probe):
  photos = probe.work / "photos"
  shutil.copytree(FLOWERS, photos)  # a conversion of a few seconds, interrupted by Ctrl-C
  out = probe.work / "converted"
  result = probe.command(TF_PYTHON, "-m", "effnetv2_tf.data.convert", photos, out,
                         signals=[(lambda: any(out.glob("train-*.partial")), signal.SIGINT)])
  probe.record(10, "Ctrl-C during a conversion", result, ["convert"], expect=(2, 130))
  again = probe.command(TF_PYTHON, "-m", "effnetv2_tf.data.convert", photos, out, timeout=900)
  probe.record(10, "  ... the same conversion again", again, ["dataset.json"])

  run = probe.base_run("tf")
  export = probe.work / "x10"
  assert probe.main_py(TF_PYTHON, "--mode=export", f"--model_dir={run}", f"--export_dir={export}")[0] == 0
  bad = probe.work / "not_photos"
  bad.mkdir()
  (bad / "a.jpg").write_text("not a photo")
  result = probe.command(TF_PYTHON, "-m", "effnetv2_tf.predict", export / "classification", bad / "a.jpg")
  probe.record(10, "predict where no file can be read", result, ["a.jpg", "0 predicted"], expect=(1,))
  (bad / "loop.jpg").symlink_to(bad / "loop.jpg")
  photo = next((ROOT / "effnetv2_tf" / "demo_data").rglob("*.jpg"))
  result = probe.command(TF_PYTHON, "-m", "effnetv2_tf.predict", export / "classification", bad / "loop.jpg", photo)
  probe.record(10, "predict with a symlink loop among the files", result, ["symlink loop", photo.name])

  result = probe.main_py(JAX_PYTHON, "--engine=jax", "--mode=train", f"--model_dir={probe.work / 'sig'}",
                         f"--data_dir={probe.records}", f"--hparam_str={JAX_RUN},runtime.checkpoint_steps=100",
                         signals=[("stage 1/", signal.SIGTERM), (("stage 1/", 2), signal.SIGTERM)])
  probe.record(10, "second SIGTERM before any checkpoint (jax)", result, ["no checkpoint had been saved"],
               expect=(143,))  # 128 + SIGTERM: stopped without saving
  result = probe.main_py(TF_PYTHON, "--use_tpu", f"--model_dir={probe.work / 'tpu'}")
  probe.record(10, "--use_tpu alone on a machine without TPUs", result, ["--use_tpu"], expect=(2,))
  result = probe.main_py(TF_PYTHON, "--mode=train", f"--model_dir={probe.work / 'e0'}", f"--data_dir={probe.records}",
                         f"--hparam_str={TWO_STAGES}")
  row = probe.record(10, "a two-stage TF run (the E0000 line)", result, ["top-1"])
  row["threadpool_lines"] = (result[1] + result[2]).count("use_unbounded_threadpool")


CASES = {"damaged": damaged_jax_checkpoint, "disk": full_disk_jax, "processes": jax_processes,
         "export": export_jax_run_without_jax, "read_only": read_only, "bucket": unreachable_bucket,
         "settings": nonsense_settings, "metadata": jax_step_without_metadata, "divergence": divergence_advice,
         "small": small_items}
NEEDS_ROOT = {"disk", "read_only"}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--only", default=",".join(CASES), help="comma-separated, of: " + ", ".join(CASES))
  parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "faults.json"))
  args = parser.parse_args()
  chosen = args.only.split(",")
  unknown = [name for name in chosen if name not in CASES]
  if unknown:
    parser.error(f"unknown case {', '.join(unknown)}: choose of {', '.join(CASES)}")
  for python in (TF_PYTHON, JAX_PYTHON):
    if not python.exists():
      parser.error(f"{python} is missing: make the CI stacks first (bash .ci/run, or its set-up functions)")
  with tempfile.TemporaryDirectory(prefix="faults-") as work:
    probe = Probe(work)
    for name in chosen:
      if name in NEEDS_ROOT and os.geteuid() != 0:
        print(f"    {name}: skipped (a tmpfs of its own needs root)", flush=True)
        continue
      CASES[name](probe)
  counts = {verdict: sum(row["verdict"] == verdict for row in probe.rows)
            for verdict in ("ok", "one line", "traceback", "silent", "lost", "hang")}
  print("verdicts: " + ", ".join(f"{verdict} {count}" for verdict, count in counts.items()))
  pathlib.Path(args.out).write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "counts": counts,
                                                "rows": probe.rows}, indent=1) + "\n")
  print(f"written: {args.out}")


if __name__ == "__main__":
  main()
