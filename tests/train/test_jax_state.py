"""The JAX engine's state and step against the TF engine's: the same recipe on both backends."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import ROOT, tiny

pytest.importorskip("jax", reason="the JAX route is not installed: pip install -e \".[jax]\"")
pytestmark = pytest.mark.jax

# RMSProp (TF1 semantics) with a warm-up, weight decay, label smoothing, gradient clipping, BN statistics and the
# EMA: every part of the step but the RNG streams (dropout and stochastic depth draw from each backend's own).
STEPS = tiny(data__num_train_examples=48, regularization__dropout_max=0.0, regularization__survival_prob=1.0,
             train__warmup_epochs=0.5, train__gradient_clip=0.5, runtime__deterministic=True,
             model__synchronized_bn=False, eval__batch_size=16)


@pytest.mark.e2e  # 30-90 s: JAX builds the model and compiles the step in a process of its own
def test_three_jax_steps_on_8_devices_equal_the_tf_engines_on_one(tmp_path, demo_records):
  """The batch split over 8 devices (one example each), the state replicated: one SPMD program whose batch norm
  sees the global batch, as the TF engine's one device does (per-device statistics of one example would not
  give its weights); then the padded eval of the EMA weights on the demo's 100 val photos (7 batches of 16 over 8
  devices, the last padded) counts what the TF engine's does; its checkpoint does not restore into another model;
  and with dropout, the RNG states advance at every step."""
  from effnetv2_tf import hparams
  from effnetv2_tf.train.run_data import eval_source
  from effnetv2_tf.train.schedule import run_plan
  from effnetv2_tf.engines.tf.engine import TFEngine
  from effnetv2_tf.tpu.strategy import resolve_runtime
  config = hparams.resolve(hparams.override(hparams.get_config("demo"), STEPS))
  engine = TFEngine(config, resolve_runtime("default"), eval_source(config, str(demo_records)))
  rng = np.random.default_rng(0)
  size, batch, classes = run_plan(config)[1].stages[0].image_size, config.train.batch_size, config.model.num_classes
  images = rng.normal(size=(3, batch, size, size, 3)).astype("float32")
  labels = np.eye(classes, dtype="float32")[rng.integers(0, classes, (3, batch))]
  np.savez(tmp_path / "given.npz", images=images, labels=labels,
           **{f"weight_{i}": w for i, w in enumerate(engine.state.model.get_weights())})
  loop = engine.train_loop(run_plan(config)[1].stages[0])
  batches = engine.batches(lambda input_context: tf.data.Dataset.from_tensor_slices((images, labels)))
  results = [loop(batches, 1) for _ in range(3)]
  done = subprocess.run([sys.executable, "-m", "tests.train.jax_steps", tmp_path / "given.npz",
                         tmp_path / "jax.npz", STEPS, demo_records], capture_output=True, text=True, cwd=ROOT, timeout=300,
                        env={**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8"})
  assert done.returncode == 0, done.stderr[-3000:]
  jax = np.load(tmp_path / "jax.npz")
  assert jax["devices"] == 8
  np.testing.assert_allclose(jax["results"], results, rtol=1e-5)  # each step's loss and top-1
  for i, weight in enumerate(engine.state.model.get_weights()):  # weights and BN statistics
    np.testing.assert_allclose(jax[f"weight_{i}"], weight, atol=2e-6)
  for i, shadow in enumerate(engine.state.ema.shadows):
    np.testing.assert_allclose(jax[f"shadow_{i}"], shadow.numpy(), atol=2e-6)
  evaluated = engine.evaluate()  # the EMA weights
  hits = [round(evaluated[key] * evaluated["examples"]) for key in ("top1", "top5")]
  assert jax["eval"].tolist() == [*hits, 100] and evaluated["examples"] == 100
  # The Orbax checkpoint saved before the last step, restored into a 3-class model: refused, naming it.
  assert str(jax["refused"]).startswith(f"Checkpoint {tmp_path / 'checkpoints' / 'ckpt_2'} does not fit this model: ")
  # Dropout's RNG state travels through the compiled step: each step draws new masks, none is frozen into it.
  first, second, third = jax["rng_states"]
  assert len(first) and (first != second).any(axis=1).all() and (second != third).any(axis=1).all()


def test_a_batch_that_does_not_split_over_the_devices_is_refused_naming_it(tmp_path):
  done = subprocess.run([sys.executable, "-m", "tests.train.jax_steps", tmp_path / "none.npz", tmp_path / "jax.npz",
                         tiny(eval__batch_size=10)], capture_output=True, text=True, cwd=ROOT, timeout=300,
                        env={**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8"})
  assert done.returncode != 0
  assert "ValueError: eval.batch_size 10 does not split over the 8 devices: make it a multiple of 8." in done.stderr
