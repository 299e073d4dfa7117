"""The JAX engine behind the stage loop: the TF engine's run on 8 devices, its eval and its export. (What the JAX
state refuses: test_jax_state; exact resume after signals, on 2 processes: test_jax_processes.)

Each run is a process of its own (tests/train/run_trainer.py --engine=jax): Keras loads its backend once, and
XLA_FLAGS gives that process 8 virtual CPU devices, over which each global batch of 8 is split.
"""

import os

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import main_py, run_trainer

pytest.importorskip("jax", reason="the JAX route is not installed: pip install -e \".[jax]\"")
pytestmark = pytest.mark.jax

EIGHT_DEVICES = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
# With run_trainer's TINY_TRAINER (dropout 0, survival 1: no RNG stream in the model, whose draws differ by backend):
# 20 steps of 8 images in 2 stages, 10 at 36 px and 10 at 40 px, RMSProp (TF1 semantics) with a 10-step warm-up,
# weight decay, label smoothing, gradient clipping, BN statistics and the EMA; eval batches of 16 (7 over the 8
# devices for the 100 val photos, the last padded).
TWENTY_STEPS = "data.num_train_examples=160,eval.batch_size=16,train.warmup_epochs=0.5,train.gradient_clip=0.5"


def _arrays(path, prefix):
  saved = np.load(path)
  return [saved[f"{prefix}_{i}"] for i in range(sum(key.startswith(f"{prefix}_") for key in saved.files))]


@pytest.mark.e2e  # about 60 s: the TF run, then the JAX one compiling a step per stage and its eval
def test_both_engines_train_the_same_two_stage_run(demo_records, tmp_path):
  """From the TF run's initial weights, on the same tf.data batches (RandAugment drawn by the pipeline's seeds):
  the JAX engine's losses, weights, BN statistics and EMA after 20 steps over 2 stages equal the TF engine's (the
  batch split over 8 devices, one example each, in one SPMD program whose batch norm sees the global batch, as the
  TF engine's one device does: per-device statistics of one example would not give its weights), and its padded
  eval of the EMA weights counts what the TF engine's does. `main.py --mode=export` of the JAX run (its Orbax
  checkpoint read under TensorFlow) serves the logits the JAX backend computes from that checkpoint, in plain TF
  ops."""
  hparam_str = f"--hparam_str={TWENTY_STEPS}"
  tf_run = run_trainer(tmp_path / "tf", demo_records, hparam_str, "--finish", f"--weights_out={tmp_path / 'tf.npz'}")
  jax_run = run_trainer(tmp_path / "jax", demo_records, hparam_str, "--engine=jax", "--finish",
                        f"--initial_weights={tmp_path / 'tf.npz'}", f"--weights_out={tmp_path / 'jax.npz'}",
                        f"--logits_out={tmp_path / 'logits.npz'}", env=EIGHT_DEVICES)
  assert (tf_run["replicas"], jax_run["replicas"]) == (1, 8)
  assert len(jax_run["losses"]) == 20 and jax_run["step"] == 20
  np.testing.assert_allclose(jax_run["losses"], tf_run["losses"], rtol=1e-4)
  # Weights with BN statistics, then the EMA's averages; atol for the few biases training moved by ~1e-8 from 0
  # (measured: every value within 1e-4 relative + 5.5e-7).
  for kind in ("weight", "shadow"):
    ours, theirs = _arrays(tmp_path / "jax.npz", kind), _arrays(tmp_path / "tf.npz", kind)
    assert len(ours) == len(theirs) > 100
    for index, (a, b) in enumerate(zip(ours, theirs)):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, err_msg=f"{kind} {index}")
  assert jax_run["eval"] == tf_run["eval"] and tf_run["eval"]["examples"] == 100  # each photo once, top-1 and top-5

  exported = main_py("--mode=export", f"--model_dir={tmp_path / 'jax'}", f"--export_dir={tmp_path / 'export'}")
  assert exported.returncode == 0, exported.stderr[-3000:]
  assert "exported step 20 of efficientnetv2-b0" in exported.stdout
  served = tf.saved_model.load(str(tmp_path / "export" / "classification"))
  graph = served.signatures["serving_default"].graph.as_graph_def()
  ops = {node.op for node in graph.node} | {node.op for f in graph.library.function for node in f.node_def}
  assert "Conv2D" in ops and "XlaCallModule" not in ops  # plain TF ops, no jax2tf
  jax_logits = np.load(tmp_path / "logits.npz")
  logits = served.signatures["serving_default"](images=tf.constant(jax_logits["images"]))["logits"].numpy()
  np.testing.assert_allclose(logits, jax_logits["logits"], atol=1e-5)
