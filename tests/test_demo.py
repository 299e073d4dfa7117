"""`python main.py` with no flags: the real demo, end to end (about two minutes on 2 cores)."""

import json

import pytest

from tests.helpers import main_py


@pytest.mark.e2e
@pytest.mark.one_stack
def test_demo_learns_the_shipped_photos(tmp_path):
  done = main_py(f"--model_dir={tmp_path}", cwd=tmp_path, timeout=900)
  assert done.returncode == 0, done.stderr[-3000:]
  assert "stage 4/4" in done.stdout and "size  dropout          augment" in done.stdout  # the stage table
  assert "RandAugment 2.00" in done.stdout  # the demo's first stage (its policy is RandAugment)
  final = json.loads((tmp_path / "eval.jsonl").read_text().splitlines()[-1])
  assert final["examples"] == 100 and final["ema"]
  assert final["top1"] >= 0.35, final  # chance is 0.2; 0.35 is 3.75 standard errors above it
  rows = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
  first, last = rows[:5], rows[-5:]
  assert sum(r["loss"] for r in last) < sum(r["loss"] for r in first)
  assert (tmp_path / "training.png").stat().st_size > 10_000
  assert list((tmp_path / "checkpoints").glob("ckpt-*.index")) and list((tmp_path / "train").iterdir())
