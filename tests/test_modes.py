"""main.py's eval and export jobs on a finished run: they read the run's config.yaml, need only what they
use (export: no data) and write nothing into the run. In this process: main.py's process, its start-up lines
included, is tested by test_readme and test_doctor."""

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import run_main, run_without_package, snapshot, unit_images


def _trained_logits(run, images):
  """The run's EMA logits computed the way training built the model (the TF engine's TFState from the run's
  config)."""
  import keras
  import ml_collections
  import yaml
  from effnetv2_tf.data.preprocessing import normalize
  from effnetv2_tf.model import get_model_spec
  from effnetv2_tf.train.schedule import run_plan
  from effnetv2_tf.engines.tf.state import TFState
  config = ml_collections.ConfigDict(yaml.safe_load((run / "config.yaml").read_text()))
  keras.mixed_precision.set_global_policy("float32")
  steps_per_epoch, schedule = run_plan(config)
  state = TFState(config, tf.distribute.get_strategy(), False, schedule.total_steps, steps_per_epoch)
  state.restore(tf.train.latest_checkpoint(str(run / "checkpoints")))
  normalized = normalize(tf.constant(images) * 255.0, get_model_spec(config.model.name).normalization)
  with state.ema.averaged_weights():
    return state.model(normalized, training=False).numpy(), state.model.get_weights(), normalized


def test_eval_reads_the_run_and_leaves_it_as_it_was(finished_run, demo_records):
  before = snapshot(finished_run)
  done = run_main("--mode=eval", f"--model_dir={finished_run}", f"--data_dir={demo_records}",
                 "--hparam_str=eval.batch_size=7")  # applies to this invocation only
  assert done.returncode == 0, done.stderr[-3000:]
  assert "step 2: top-1 " in done.stdout and "on 100 images" in done.stdout
  assert snapshot(finished_run) == before


def test_export_needs_no_data_and_builds_the_run_s_own_model(finished_run, tmp_path):
  before = snapshot(finished_run)
  done = run_main("--mode=export", f"--model_dir={finished_run}", f"--export_dir={tmp_path / 'export'}")
  assert done.returncode == 0, done.stderr[-3000:]
  assert "exported step 2 of efficientnetv2-b0 (width 0.25, depth 0.25) (EMA weights)" in done.stdout
  assert done.stdout.strip().endswith("best fed 40-px images (the run's eval size)")
  assert done.stdout.strip().splitlines()[-2] == (f"saved_model: {tmp_path / 'export' / 'classification'}, "
                                                  f"{tmp_path / 'export' / 'feature-vector'}")
  assert snapshot(finished_run) == before
  out = run_without_package({"logits": (tmp_path / "export" / "classification", "serving_default", "images", (3, 40))})
  exported = out["logits"]["logits"]
  expected, weights, normalized = _trained_logits(finished_run, unit_images(3, 40))
  np.testing.assert_allclose(exported, expected, atol=1e-5, rtol=1e-5)
  # The run trained with bn_epsilon 0.5: the same weights in a model with the default epsilon differ.
  from effnetv2_tf.model import create_model
  default = create_model("efficientnetv2-b0", width=0.25, depth=0.25, num_classes=5, classifier_activation=None)
  default.set_weights(weights)
  assert np.abs(default(normalized, training=False).numpy() - expected).max() > 1e-2


def test_overrides_that_change_the_model_are_refused_and_nothing_is_created(finished_run, tmp_path):
  before = snapshot(finished_run)
  done = run_main("--mode=export", f"--model_dir={finished_run}", f"--export_dir={tmp_path / 'export'}",
                 "--hparam_str=model.bn_epsilon=0.001")
  assert done.returncode == 2
  assert "changes the model the run trained (model.bn_epsilon)" in done.stderr.strip().splitlines()[-1]
  for mode in ("eval", "export"):
    done = run_main(f"--mode={mode}", f"--model_dir={tmp_path / 'nothing'}")
    assert done.returncode == 2 and "holds no training run (no config.yaml)" in done.stderr
    assert not (tmp_path / "nothing").exists()
  assert snapshot(finished_run) == before and not (tmp_path / "export").exists()


def test_export_overwrite_replaces_only_a_previous_export(finished_run, tmp_path):
  before = snapshot(finished_run)
  into_run = run_main("--mode=export", f"--model_dir={finished_run}", f"--export_dir={finished_run}", "--overwrite")
  assert into_run.returncode == 2 and "--overwrite replaces only a previous export" in into_run.stderr
  assert "checkpoints" in into_run.stderr and snapshot(finished_run) == before
  export = ["--mode=export", f"--model_dir={finished_run}", f"--export_dir={tmp_path / 'export'}"]
  assert run_main(*export).returncode == 0
  again = run_main(*export)
  assert again.returncode == 2 and "exists and is not empty: pass --overwrite" in again.stderr
  (tmp_path / "export" / "notes.txt").write_text("mine")
  refused = run_main(*export, "--overwrite")
  assert refused.returncode == 2 and "also holds notes.txt" in refused.stderr
  (tmp_path / "export" / "notes.txt").unlink()
  assert run_main(*export, "--overwrite").returncode == 0


def test_eval_refuses_data_of_other_classes_and_says_when_it_cannot_tell(finished_run, demo_records, tmp_path):
  import shutil
  from effnetv2_tf.data.convert import convert
  for name in ("cat", "dog"):  # two classes of noise-free gray squares
    folder = tmp_path / "two" / "val" / name
    folder.mkdir(parents=True)
    (folder / "a.jpg").write_bytes(tf.io.encode_jpeg(tf.fill((8, 8, 3), tf.constant(100, tf.uint8))).numpy())
  convert(tmp_path / "two", tmp_path / "two_records", shards=1)
  relabelled = shutil.copytree(demo_records, tmp_path / "relabelled")
  (relabelled / "labels.txt").write_text("a\nb\nc\nd\ne\n")  # the same photos under other names
  before = snapshot(finished_run)
  run_classes = "(daisy, dandelion, rose, sunflower, tulip)"
  for data, line in (
      (tmp_path / "two_records", f"error: {tmp_path / 'two_records'} holds 2 classes (cat, dog), but the run "
                                 f"{finished_run} was trained on 5 {run_classes}: give data of the run's classes."),
      (relabelled, f"error: {relabelled} names other classes (a, b, c, d, e) than the run {finished_run} was trained "
                   f"on {run_classes}: give data of the run's classes, or pass --other_class_names to evaluate a "
                   "relabelled copy of them.")):
    done = run_main("--mode=eval", f"--model_dir={finished_run}", f"--data_dir={data}")
    assert done.returncode == 2 and done.stderr.strip().splitlines()[-1] == line, done.stderr[-2000:]
  asked = run_main("--mode=eval", f"--model_dir={finished_run}", f"--data_dir={relabelled}", "--other_class_names")
  assert asked.returncode == 0 and "on 100 images" in asked.stdout, asked.stderr[-2000:]
  bare = shutil.copytree(tmp_path / "two_records", tmp_path / "bare")  # the two classes' records, nothing else
  (bare / "dataset.json").unlink()
  (bare / "labels.txt").unlink()
  unchecked = run_main("--mode=eval", f"--model_dir={finished_run}", f"--data_dir={bare}")
  assert unchecked.returncode == 0 and "on 2 images" in unchecked.stdout, unchecked.stderr[-2000:]
  assert (f"{bare} has no dataset.json or labels.txt: whether it holds the run's 5 classes cannot be checked"
          in unchecked.stdout)
  assert snapshot(finished_run) == before


@pytest.mark.one_stack
def test_a_jax_runs_export_without_jax_installed_names_the_extra(finished_run, tmp_path):
  """The TensorFlow-only install meets a run of --engine=jax (an Orbax step folder): one line naming `.[jax]`."""
  import importlib.util
  import shutil
  if importlib.util.find_spec("jax"):
    pytest.skip("JAX is installed here: the line is for installs without it")
  run = tmp_path / "run"
  (run / "checkpoints" / "ckpt_2").mkdir(parents=True)
  shutil.copy(finished_run / "config.yaml", run / "config.yaml")
  for name in ("_CHECKPOINT_METADATA", "commit_success.txt"):
    (run / "checkpoints" / "ckpt_2" / name).write_text("{}")
  done = run_main("--mode=export", f"--model_dir={run}", f"--export_dir={tmp_path / 'export'}")
  assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
  assert "ckpt_2 is a checkpoint of --engine=jax (Orbax); reading it needs jax: pip install -e \".[jax]\"" in done.stderr
  assert not (tmp_path / "export").exists()
