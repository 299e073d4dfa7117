"""Fine-tuning starts: official checkpoints and our own runs, with a new classifier."""

import json
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from effnetv2_tf.model import create_model
from effnetv2_tf.weights.official import CheckpointError
from effnetv2_tf.train.warm_start import warm_start
from tests.helpers import randomize, write_official_checkpoint

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_official_checkpoint_with_another_class_count_gets_a_new_classifier(tmp_path):
  source = create_model("efficientnetv2-b0", classifier_activation=None)
  randomize(source, 1)
  prefix = write_official_checkpoint(tmp_path / "model", source)
  target = create_model("efficientnetv2-b0", num_classes=7)
  assert "classifier left as initialised" in warm_start(target, prefix)
  np.testing.assert_array_equal(target.get_layer("head").get_weights()[0], source.get_layer("head").get_weights()[0])


@pytest.mark.slow
def test_fine_tuning_from_our_run_to_three_classes_beats_chance(demo_records, tmp_path):
  """Train on 5 classes, fine-tune on a 3-class folder of real photos with a new head."""
  common = ("model.width=0.5,model.depth=0.5,train.batch_size=32,progressive.image_size_min=64,"
            "progressive.image_size_max=80,eval.image_size=80,runtime.steps_per_loop=10")
  source = tmp_path / "source"
  subprocess.run([sys.executable, str(ROOT / "main.py"), "--mode=train", f"--model_dir={source}",
                  f"--data_dir={demo_records}", f"--hparam_str={common},train.epochs=20.0,progressive.stages=2"],
                 check=True, capture_output=True, timeout=600)

  three = tmp_path / "three_classes"
  for split in ("train", "val"):
    for name in ("daisy", "rose", "sunflower"):
      shutil.copytree(ROOT / "effnetv2_tf" / "demo_data" / split / name, three / split / name)
  subprocess.run([sys.executable, "-m", "effnetv2_tf.data.convert", str(three), str(tmp_path / "records")],
                 check=True, capture_output=True, timeout=300)
  done = subprocess.run(
      [sys.executable, str(ROOT / "main.py"), "--mode=train", f"--model_dir={tmp_path / 'tuned'}",
       f"--data_dir={tmp_path / 'records'}",
       f"--hparam_str={common},model.num_classes=3,data.num_train_examples=180,train.epochs=20.0,progressive.stages=1,"
       f"eval.batch_size=60,train.ft_init_ckpt={source}"], capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-3000:]
  assert "classifier re-initialised (5 -> 3 classes)" in done.stdout
  final = json.loads((tmp_path / "tuned" / "eval.jsonl").read_text().splitlines()[-1])
  assert final["examples"] == 60
  assert final["top1"] >= 0.5, final  # chance is 1/3; 0.5 is 2.7 standard errors above it on 60 images

  # The exported JPEG-bytes signature names the right class for the held-out photos as often.
  subprocess.run([sys.executable, str(ROOT / "main.py"), "--mode=export", f"--model_dir={tmp_path / 'tuned'}",
                  f"--data_dir={tmp_path / 'records'}", f"--export_dir={tmp_path / 'export'}",
                  f"--hparam_str={common},model.num_classes=3"], check=True, capture_output=True, timeout=300)
  import tensorflow as tf
  serve = tf.saved_model.load(str(tmp_path / "export" / "classification")).signatures["serving_bytes"]
  classes = sorted(p.name for p in (three / "val").iterdir())
  files = sorted((three / "val").glob("*/*.jpg"))
  top1 = serve(image_bytes=tf.constant([f.read_bytes() for f in files]))["classes"][:, 0].numpy()
  accuracy = np.mean([classes[c] == f.parent.name for c, f in zip(top1, files)])
  assert abs(accuracy - final["top1"]) < 0.05 and accuracy >= 0.5


def test_a_run_of_another_model_is_refused(tmp_path):
  (tmp_path / "checkpoints").mkdir()
  (tmp_path / "config.yaml").write_text("model: {name: efficientnetv2-s, width: null, depth: null, num_classes: 10}\n")
  (tmp_path / "checkpoints" / "ckpt-1.index").write_text("")
  with pytest.raises(CheckpointError, match="is a efficientnetv2-s checkpoint; fine-tuning efficientnetv2-b0"):
    warm_start(create_model("efficientnetv2-b0", width=0.25, depth=0.25, num_classes=3),
               str(tmp_path / "checkpoints" / "ckpt-1"))


@pytest.mark.slow
def test_fine_tuning_from_our_run_takes_its_width_and_depth(finished_run, demo_records, tmp_path):
  from tests.helpers import main_py
  hparam_str = ("model.num_classes=5,model.bn_epsilon=0.5,data.eval_files=val-*,data.num_train_examples=16,"
                "train.batch_size=8,train.epochs=1.0,progressive.stages=1,progressive.image_size_min=32,"
                "progressive.image_size_max=40,eval.image_size=40,eval.batch_size=50,"
                f"train.ft_init_ckpt={finished_run}/")
  done = main_py("--mode=train", "--hparams=imagenet-b0", f"--model_dir={tmp_path}", f"--data_dir={demo_records}",
                 f"--hparam_str={hparam_str}")
  assert done.returncode == 0, done.stderr[-3000:]
  assert f"model.width 0.25, as in {finished_run}/" in done.stdout and "model.depth 0.25, as in" in done.stdout
  assert "our checkpoint, EMA weights" in done.stdout and "efficientnetv2-b0 (width 0.25, depth 0.25)" in done.stdout
  import yaml
  model = yaml.safe_load((tmp_path / "config.yaml").read_text())["model"]
  assert (model["width"], model["depth"]) == (0.25, 0.25)
