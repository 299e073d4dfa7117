"""The installed package: `pip install .` (a wheel, not the editable checkout) and its command with no flags, the
real demo, end to end from another folder (about two minutes on 2 cores)."""

import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.helpers import ROOT


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
  """The folder the wheel of this checkout was installed into (pip --target; its bin/ holds the command) and the
  wheel's file names. Built and installed without the network, from this environment's setuptools."""
  folder = tmp_path_factory.mktemp("installed")
  source = shutil.copytree(ROOT, folder / "source", ignore=shutil.ignore_patterns(  # a build writes into its source
      ".git", ".ci", "build", "*.egg-info", "runs", "__pycache__", ".pytest_cache", "results", "wheels"))

  def pip(*args):
    done = subprocess.run([sys.executable, "-m", "pip", "-q", *map(str, args)], capture_output=True, text=True,
                          cwd=folder, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

  pip("wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", folder / "wheel", source)
  wheel = next((folder / "wheel").glob("*.whl"))
  pip("install", "--no-deps", "--no-index", "--target", folder / "site", wheel)
  return folder / "site", zipfile.ZipFile(wheel).namelist()


def _environment(site):
  return {**os.environ, "PYTHONPATH": str(site)}  # the installed copy first: before this checkout's editable one


@pytest.mark.one_stack
def test_the_wheel_puts_nothing_generic_on_the_import_path(installed, tmp_path):
  site, names = installed
  assert {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")} == {"effnetv2_tf"}
  assert {"effnetv2_tf/hparams/__init__.py", "effnetv2_tf/tpu/pjrt.py", "effnetv2_tf/labels/imagenet1k_labels.txt",
          "effnetv2_tf/demo_data/README.md"} <= set(names)
  assert sum(name.startswith("effnetv2_tf/demo_data/") and name.endswith(".jpg") for name in names) == 400
  probe = ("import importlib.util, effnetv2_tf.hparams as h; print(h.__file__); "
           "print([n for n in ('hparams', 'tpu', 'main') if importlib.util.find_spec(n)])")
  done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                        env=_environment(site))
  assert done.returncode == 0, done.stderr[-2000:]
  assert done.stdout.splitlines() == [str(site / "effnetv2_tf" / "hparams" / "__init__.py"), "[]"]


@pytest.mark.e2e
@pytest.mark.one_stack
def test_the_installed_command_runs_the_demo_from_another_folder_and_it_learns(installed, tmp_path):
  site, _ = installed
  done = subprocess.run([str(site / "bin" / "effnetv2-tf"), "--model_dir=run"], capture_output=True, text=True,
                        cwd=tmp_path, env=_environment(site), timeout=900)
  assert done.returncode == 0, done.stderr[-3000:]
  run = tmp_path / "run"
  assert "stage 4/4" in done.stdout and "size  dropout          augment" in done.stdout  # the stage table
  assert "RandAugment 2.00" in done.stdout  # the demo's first stage (its policy is RandAugment)
  assert "preparing the demo's photos (once)" in done.stdout and "train 30/300" not in done.stderr
  final = json.loads((run / "eval.jsonl").read_text().splitlines()[-1])
  assert final["examples"] == 100 and final["ema"]
  assert final["top1"] >= 0.35, final  # chance is 0.2; 0.35 is 3.75 standard errors above it
  rows = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
  first, last = rows[:5], rows[-5:]
  assert sum(r["loss"] for r in last) < sum(r["loss"] for r in first)
  assert (run / "training.png").stat().st_size > 10_000
  assert list((run / "checkpoints").glob("ckpt-*.index")) and list((run / "train").iterdir())
