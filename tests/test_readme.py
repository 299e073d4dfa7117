"""The README's commands, run as written there (with the files they name made beside them)."""

import json
import os
import re
import subprocess
import sys

import pytest

from effnetv2_tf.model import create_model
from tests.helpers import ROOT, randomize, write_official_checkpoint

pytestmark = [pytest.mark.e2e, pytest.mark.one_stack]  # processes of main.py, the same on every build


def readme_commands(first_line):
  """The shell commands of the README code block that starts with `first_line`, continuations joined."""
  blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
  block = next(b for b in blocks if b.startswith(first_line + "\n"))
  lines = block.replace("\\\n", " ").splitlines()
  return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]


def run_as_written(commands, cwd):
  """Runs each command with bash in `cwd`, `python` being this interpreter and `main.py` the project's; returns
  their standard outputs. TensorFlow's start-up banner and, on a machine without a GPU, its CUDA lines stay out
  of every command's console."""
  (cwd / "main.py").symlink_to(ROOT / "main.py")
  env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
  outputs = []
  for command in commands:
    done = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, (command, done.stderr[-3000:])
    assert not any(text in done.stderr for text in ("oneDNN custom operations", "cuInit", "cuda drivers")), (
        command, done.stderr[-3000:])
    outputs.append(done.stdout)
  return outputs


def test_fine_tuning_an_official_checkpoint_on_your_own_photos(tmp_path):
  commands = readme_commands("# fine-tune an official checkpoint on your own photos")
  assert len(commands) == 2 and "train.ft_init_ckpt=efficientnetv2-b0/" in commands[1]
  (tmp_path / "my_photos").symlink_to(ROOT / "effnetv2_tf" / "demo_data")
  official = create_model("efficientnetv2-b0", classifier_activation=None)  # official names, 1000 classes
  randomize(official, 3)
  write_official_checkpoint(tmp_path / "efficientnetv2-b0" / "model", official, ema_model=official)

  converted, trained = run_as_written(commands, tmp_path)
  assert "5 classes" in converted and "train: 300 images" in converted
  assert "model.num_classes 5 (my_records/dataset.json)" in trained  # the counts come from the data
  assert "data.num_train_examples 300 (my_records/dataset.json)" in trained
  loaded = f"{len(official.weights) - 2} variables loaded ({len(official.weights) - 2} from EMA shadows, 0 raw)"
  assert loaded in trained and "classifier left as initialised" in trained
  final = json.loads((tmp_path / "runs" / "my-b0" / "eval.jsonl").read_text().splitlines()[-1])
  assert final["examples"] == 100 and final["step"] == 140  # 15 epochs of 300 photos at batch 32


def test_fine_tuning_one_of_our_runs_on_your_own_photos(finished_run, demo_records, tmp_path):
  import shutil
  block = readme_commands("# from an official checkpoint (the unpacked efficientnetv2-s-21k.tgz), the official "
                          "CIFAR-10 recipe (TFDS)")
  command = next(command for command in block if "train.ft_init_ckpt=runs/demo" in command)
  shutil.copytree(finished_run, tmp_path / "runs" / "demo")  # a scaled B0 (width and depth 0.25), 5 classes
  (tmp_path / "my_records").symlink_to(demo_records)
  (tuned,) = run_as_written([command], tmp_path)
  assert "model.width 0.25, as in runs/demo" in tuned and "model.depth 0.25, as in runs/demo" in tuned
  assert "fine-tuning from runs/demo" in tuned and "efficientnetv2-b0 (width 0.25, depth 0.25)" in tuned
  assert "our checkpoint, EMA weights" in tuned
  import yaml
  model = yaml.safe_load((tmp_path / "runs" / "tuned" / "config.yaml").read_text())["model"]
  assert (model["width"], model["depth"]) == (0.25, 0.25)  # a rerun, an eval or an export builds the same model
  final = json.loads((tmp_path / "runs" / "tuned" / "eval.jsonl").read_text().splitlines()[-1])
  assert final["examples"] == 100 and final["step"] == 140  # 15 epochs of 300 photos at batch 32


def test_evaluating_exporting_and_predicting_with_a_finished_run(finished_run, demo_records, tmp_path):
  import shutil
  commands = readme_commands("# evaluate, export and predict with a finished run")
  assert [command.split()[:3] for command in commands] == [
      ["python", "main.py", "--mode=eval"], ["python", "main.py", "--mode=export"],
      ["python", "-m", "effnetv2_tf.predict"]]
  shutil.copytree(finished_run, tmp_path / "runs" / "mine")
  (tmp_path / "my_records").symlink_to(demo_records)
  (tmp_path / "my_photos").symlink_to(ROOT / "effnetv2_tf" / "demo_data")
  evaluated, exported, predicted = run_as_written(commands, tmp_path)
  assert "step 2: top-1 " in evaluated and "on 100 images" in evaluated
  assert "exported step 2" in exported and (tmp_path / "export" / "mine" / "feature-vector").is_dir()
  lines = predicted.strip().splitlines()
  roses = sorted((ROOT / "effnetv2_tf" / "demo_data" / "val" / "rose").glob("*.jpg"))
  assert len(lines) == len(roses) and all(line.count("(") == 3 for line in lines)
  # The run's class names (the converter's labels.txt) travel with the export.
  assert all(set(re.findall(r"(\w+) \(", line.split(": ", 1)[1])) <= {"daisy", "dandelion", "rose", "sunflower", "tulip"}
             for line in lines)


@pytest.mark.jax
def test_the_jax_sections_demo_eval_and_export(tmp_path):
  """The demo trained by Keras 3 on JAX, its eval with the same engine and its export (TensorFlow), as written
  (the install line is CI's JAX stack's own set-up)."""
  pytest.importorskip("jax", reason="the JAX route is not installed: pip install -e \".[jax]\"")
  commands = readme_commands("# Keras 3 on JAX: the demo, then its eval and export")
  assert commands[0].startswith('pip install -e ".[jax]"')
  trained, evaluated, exported = run_as_written(commands[1:], tmp_path)
  assert "on cpu, 1 replica(s), model_dir runs/demo-jax" in trained and "stage 4/4" in trained
  assert "note: on the CPU the JAX engine trains 3-6x slower than --engine=tf" in trained
  final = json.loads((tmp_path / "runs" / "demo-jax" / "eval.jsonl").read_text().splitlines()[-1])
  assert final["step"] == 18 and final["examples"] == 100  # 2 epochs of 300 photos at batch 32
  assert (tmp_path / "runs" / "demo-jax" / "checkpoints" / "ckpt_18").is_dir()
  assert f"step 18: top-1 {final['top1']:.4f}" in evaluated
  assert "exported step 18 of efficientnetv2-b0" in exported and (tmp_path / "export" / "demo-jax").is_dir()
