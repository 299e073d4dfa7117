"""Progressive learning for any Keras model's `fit` (effnetv2_tf.progressive): its stages are the trainer's, and a
plain Keras model trains through them with its own fit, callbacks seeing one run's epochs."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from effnetv2_tf import hparams, progressive
from effnetv2_tf.train.schedule import PAPER_TABLE6, run_plan
from tests.helpers import ROOT


@pytest.mark.parametrize("name, hparam_str", [
    ("demo", ""),
    ("photos-b0", "model.num_classes=5,data.num_train_examples=3200,train.epochs=30"),
    ("imagenet-s", "progressive.rule=paper"),
    ("imagenet-m", ""),  # the official rule, mixup
])
def test_the_fit_routes_stages_are_the_trainers(name, hparam_str):
  config = hparams.resolve(hparams.override(hparams.get_config(name), hparam_str))
  steps_per_epoch, schedule = run_plan(config)
  stages = progressive.plan_of(config)
  assert len(stages) == len(schedule.stages) > 1
  for ours, theirs in zip(stages, schedule.stages):
    assert (ours.image_size, ours.dropout_rate, ours.randaug_magnitude, ours.mixup_alpha, ours.cutmix_alpha) == (
        theirs.image_size, theirs.dropout_rate, theirs.randaug_magnitude, theirs.mixup_alpha, theirs.cutmix_alpha)
    assert abs(ours.end_epoch * steps_per_epoch - theirs.end_step) <= steps_per_epoch  # whole epochs


def test_the_default_plan_is_the_papers_v2_s():
  first, *_, last = progressive.plan(350)
  table = PAPER_TABLE6["efficientnetv2-s"]
  assert (first.image_size, first.randaug_magnitude, first.dropout_rate) == (128, 5.0, 0.1)
  assert (last.image_size, last.randaug_magnitude, last.dropout_rate) == (300, 15.0, 0.3)
  assert (table["image_size"], table["randaug"], table["dropout"]) == ((128, 300), (5, 15), (0.1, 0.3))
  assert (first.start_epoch, last.end_epoch) == (0, 350)


class _Sizes(keras.layers.Layer):
  """Records the image size each time the model is traced (into `seen`: a bound method, which Keras does not
  copy as it would a list attribute)."""

  def __init__(self, seen, **kwargs):
    super().__init__(**kwargs)
    self.record = seen.append

  def call(self, images):
    self.record(images.shape[1])
    return images


def _tiny_model(seen):
  inputs = keras.Input((None, None, 3))
  x = _Sizes(seen)(inputs)
  x = keras.layers.Rescaling(1 / 255.0)(x)
  x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(x)
  x = keras.layers.GlobalAveragePooling2D()(x)
  x = keras.layers.Dropout(0.5, name="top_dropout")(x)
  return keras.Model(inputs, keras.layers.Dense(5)(x), name="tiny")


class _Epochs(keras.callbacks.Callback):
  def __init__(self):
    super().__init__()
    self.rates, self.ended = [], []

  def on_epoch_begin(self, epoch, logs=None):
    self.rates.append(self.model.get_layer("top_dropout").rate)

  def on_epoch_end(self, epoch, logs=None):
    self.ended.append((epoch, logs["loss"]))


def test_a_keras_model_trains_through_the_stages_with_its_own_fit(demo_records, tmp_path):
  """3 stages of an epoch (32, 40, 48 px; RandAugment 2 -> 6, mixup 0 -> 0.2, dropout 0.1 -> 0.3): each traced
  once at its size with its rate, the callbacks (ours, Keras' CSVLogger) see epochs 0, 1, 2 of one run."""
  seen = []
  model = _tiny_model(seen)
  model.compile(keras.optimizers.Adam(1e-3), keras.losses.CategoricalCrossentropy(from_logits=True))
  stages = progressive.plan(3, stages=3, image_size=(32, 48), randaug=(2, 6), mixup=(0, 0.2), dropout=(0.1, 0.3))
  epochs = _Epochs()
  history = progressive.fit(model, demo_records, stages, batch_size=8, normalization="none", steps_per_epoch=4,
                            callbacks=[epochs, keras.callbacks.CSVLogger(str(tmp_path / "log.csv"))], verbose=0)
  traced = [size for size in seen if size is not None]
  assert sorted(set(traced)) == [32, 40, 48] and traced == sorted(traced)
  assert epochs.rates == pytest.approx([0.1, 0.2, 0.3]) and [e for e, _ in epochs.ended] == [0, 1, 2]
  assert all(np.isfinite(loss) for _, loss in epochs.ended) and history.epoch == [2]
  assert [line.split(",")[0] for line in (tmp_path / "log.csv").read_text().splitlines()[1:]] == ["0", "1", "2"]


def test_what_the_fit_route_refuses(demo_records):
  stages = progressive.plan(2, stages=2, image_size=(32, 40), dropout=(0.1, 0.3))
  sparse = _tiny_model([])
  sparse.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  with pytest.raises(ValueError, match="compiled with SparseCategoricalCrossentropy: the stages' labels are one-hot"):
    progressive.fit(sparse, demo_records, stages, batch_size=8, normalization="none")
  inputs = keras.Input((None, None, 3))
  plain = keras.Model(inputs, keras.layers.Dense(5)(keras.layers.GlobalAveragePooling2D()(inputs)), name="plain")
  plain.compile("adam", keras.losses.CategoricalCrossentropy(from_logits=True))
  with pytest.raises(ValueError, match="plain has no layer named 'top_dropout'"):
    progressive.fit(plain, demo_records, stages, batch_size=8, normalization="none")
  images = tf.data.Dataset.from_tensor_slices((np.zeros((4, 50, 50, 3), "uint8"), np.zeros(4, "int64")))
  with pytest.raises(ValueError, match="give steps_per_epoch= and num_classes="):
    progressive.fit(plain, images, stages, batch_size=8, normalization="none")


@pytest.mark.jax
def test_the_same_stages_train_on_the_jax_backend(demo_records):
  """The same 3 stages through fit on Keras' JAX backend (a process of its own: the backend is chosen before Keras
  loads): each stage's size and rate traced, the epochs of one run."""
  pytest.importorskip("jax", reason="the JAX route is not installed: pip install -e \".[jax]\"")
  script = f"""
import json, keras
from effnetv2_tf import progressive
from tests.test_progressive import _Epochs, _tiny_model
seen = []
model = _tiny_model(seen)
model.compile(keras.optimizers.Adam(1e-3), keras.losses.CategoricalCrossentropy(from_logits=True))
stages = progressive.plan(3, stages=3, image_size=(32, 48), randaug=(2, 6), mixup=(0, 0.2), dropout=(0.1, 0.3))
epochs = _Epochs()
progressive.fit(model, {str(demo_records)!r}, stages, batch_size=8, normalization="none", steps_per_epoch=4,
                verbose=0, callbacks=[epochs])
print("RESULT " + json.dumps({{"backend": keras.backend.backend(), "seen": [s for s in seen if isinstance(s, int)],
                              "rates": epochs.rates, "epochs": [e for e, _ in epochs.ended]}}))
"""
  done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300,
                        env={**os.environ, "KERAS_BACKEND": "jax"})
  assert done.returncode == 0, done.stderr[-3000:]
  result = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))[7:])
  assert result["backend"] == "jax" and sorted(set(result["seen"])) == [32, 40, 48]
  assert result["rates"] == pytest.approx([0.1, 0.2, 0.3]) and result["epochs"] == [0, 1, 2]
