"""Progressive learning for any Keras model's `fit` (effnetv2_tf.progressive): its stages are the trainer's, and a
plain Keras model trains through them with its own fit, callbacks seeing one run's epochs."""

import dataclasses
import json
import os
import shutil
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
  """Each epoch's dropout rate (of the layer `dropout`), learning rate, steps, and its number and loss at its end."""

  def __init__(self, dropout="top_dropout"):
    super().__init__()
    self.dropout = dropout
    self.rates, self.learning_rates, self.steps, self.ended = [], [], [], []

  def on_epoch_begin(self, epoch, logs=None):
    self.rates.append(self.model.get_layer(self.dropout).rate)
    self.learning_rates.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))
    self.steps.append(0)

  def on_train_batch_end(self, batch, logs=None):
    self.steps[-1] += 1

  def on_epoch_end(self, epoch, logs=None):
    self.ended.append((epoch, logs["loss"]))


class _Preempted(Exception):
  pass


class _StopAt(keras.callbacks.Callback):
  """Ends a run as a preemption would, as `epoch` begins (the epoch before backed up)."""

  def __init__(self, epoch):
    super().__init__()
    self.epoch = epoch

  def on_epoch_begin(self, epoch, logs=None):
    if epoch == self.epoch:
      raise _Preempted


def _train(records, backup_dir, log, stop_at=None):
  """The 3 stages of 2 epochs (32, 40, 48 px; RandAugment 2 -> 6, mixup 0 -> 0.2, dropout 0.1 -> 0.3; the second
  at 16 images a step, the others at fit's 8) of a tiny model from the same initial weights, with Keras'
  BackupAndRestore, CSVLogger, ModelCheckpoint and TensorBoard (into LOG's folder, named after the backup):
  (model, sizes traced, epochs)."""
  keras.utils.set_random_seed(0)
  seen = []
  model = _tiny_model(seen)
  model.compile(keras.optimizers.Adam(1e-2), keras.losses.CategoricalCrossentropy(from_logits=True))
  stages = progressive.plan(6, stages=3, image_size=(32, 48), randaug=(2, 6), mixup=(0, 0.2), dropout=(0.1, 0.3))
  stages[1] = dataclasses.replace(stages[1], batch_size=16)
  epochs = _Epochs()
  name = log.parent / backup_dir.name
  callbacks = [keras.callbacks.BackupAndRestore(str(backup_dir)), keras.callbacks.CSVLogger(str(log)), epochs,
               keras.callbacks.ModelCheckpoint(f"{name}-{{epoch}}.weights.h5", save_weights_only=True),
               keras.callbacks.TensorBoard(f"{name}-tensorboard", write_graph=False)]
  try:
    progressive.fit(model, records, stages, batch_size=8, normalization="none", steps_per_epoch=2, verbose=0,
                    callbacks=callbacks + ([_StopAt(stop_at)] if stop_at is not None else []))
  except _Preempted:
    pass
  return model, [size for size in seen if size is not None], epochs


def _stop_and_resume(records, folder):
  """An uninterrupted run, and one stopped in stage 0 and in stage 1 and started again each time: what the tests
  check, as JSON (a backend in a process of its own returns it too)."""
  whole, traced, epochs = _train(records, folder / "whole", folder / "whole.csv")
  _, _, first = _train(records, folder / "backup", folder / "log.csv", stop_at=1)
  _, resumed_traced, second = _train(records, folder / "backup", folder / "log.csv", stop_at=3)
  resumed, _, third = _train(records, folder / "backup", folder / "log.csv")
  return {"traced": traced, "rates": epochs.rates, "steps": epochs.steps, "learning_rates": epochs.learning_rates,
          "losses": [float(loss) for _, loss in epochs.ended],
          "epochs": [[e for e, _ in run.ended] for run in (epochs, first, second, third)],
          "resumed_traced": resumed_traced, "resumed_rates": third.rates,
          "resumed_learning_rates": third.learning_rates,
          "difference": max(float(np.max(np.abs(ours - theirs)))
                            for ours, theirs in zip(resumed.get_weights(), whole.get_weights())),
          "logged": [[line.split(",")[0] for line in (folder / log).read_text().splitlines()[1:]]
                     for log in ("whole.csv", "log.csv")],
          "backups_left": [name for name in ("whole", "backup") if (folder / name).exists()],
          "checkpoints": [sorted(int(path.name.split("-")[1].split(".")[0]) for path in folder.glob(f"{name}-*.h5"))
                          for name in ("whole", "backup")],
          "tensorboard_epochs": [_tensorboard_epochs(folder / f"{name}-tensorboard") for name in ("whole", "backup")]}


def _tensorboard_epochs(folder):
  """The epochs TensorBoard's event files under `folder` hold a training loss for."""
  import tensorflow as tf
  return sorted(event.step for path in folder.glob("train/events.out.tfevents.*")
                for event in tf.compat.v1.train.summary_iterator(str(path))
                for value in event.summary.value if value.tag == "epoch_loss")


def _check_stop_and_resume(result):
  """Uninterrupted: each stage traced at its size, with its dropout rate, its batch's steps (the images an epoch
  kept) and learning rate (linear in the batch); Keras' callbacks see epochs 0-5 of one run. Stopped and started
  again: the epochs left, in their stages, end at the uninterrupted run's weights; the CSV, ModelCheckpoint and
  TensorBoard hold epochs 0-5 once each; the backup is deleted at the end."""
  traced = result["traced"]
  assert sorted(set(traced)) == [32, 40, 48] and traced == sorted(traced)
  assert result["rates"] == pytest.approx([0.1, 0.1, 0.2, 0.2, 0.3, 0.3]) and result["steps"] == [2, 2, 1, 1, 2, 2]
  assert result["learning_rates"] == pytest.approx([0.01, 0.01, 0.02, 0.02, 0.01, 0.01])
  assert all(np.isfinite(result["losses"]))
  assert result["epochs"] == [[0, 1, 2, 3, 4, 5], [0], [1, 2], [3, 4, 5]]
  assert sorted(set(result["resumed_traced"])) == [32, 40] and result["resumed_rates"] == pytest.approx([0.2, 0.3, 0.3])
  assert result["resumed_learning_rates"] == pytest.approx([0.02, 0.01, 0.01])  # the stage's, not the backup's
  assert result["difference"] < 1e-6  # 0.07 with each epoch's dropout masks drawn anew
  assert result["logged"] == [list("012345")] * 2 and result["backups_left"] == []
  assert result["checkpoints"] == [[1, 2, 3, 4, 5, 6]] * 2 and result["tensorboard_epochs"] == [list(range(6))] * 2


def test_a_keras_model_trains_through_the_stages_and_resumes_in_its_stage(demo_records, tmp_path):
  _check_stop_and_resume(_stop_and_resume(demo_records, tmp_path))


def test_the_same_on_the_torch_backend(demo_records, tmp_path):
  """The same runs on Keras' PyTorch backend (eager: the sizes are recorded at every step). torch is not among
  this package's requirements: skipped without it."""
  pytest.importorskip("torch", reason="torch is not installed (pip install torch)")
  script = f"""
import json, pathlib
from tests.test_progressive import _stop_and_resume
print("RESULT " + json.dumps(_stop_and_resume({str(demo_records)!r}, pathlib.Path({str(tmp_path)!r}))))
"""
  done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300,
                        env={**os.environ, "KERAS_BACKEND": "torch"})
  assert done.returncode == 0, done.stderr[-3000:]
  result = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))[7:])
  for key in ("traced", "resumed_traced"):  # the torch backend builds a model on stand-ins 83 and 89 for None
    result[key] = [size for size in result[key] if size not in (83, 89)]
  _check_stop_and_resume(result)


def test_a_keras_hub_image_classifier_trains_through_the_stages(demo_records):
  """keras-hub's EfficientNetImageClassifier (a small backbone, no weights) with its preprocessor, whose image
  converter would resize every image to its own 64 px: each stage sets the converter to the stage's size and
  output_dropout to its rate. keras-hub is not among this package's requirements (it pins another TensorFlow):
  `pip install --no-deps --target DIR keras-hub` and PYTHONPATH=DIR run it; skipped without it."""
  keras_hub = pytest.importorskip("keras_hub", reason="keras-hub is not installed (see this test's docstring)")
  backbone = keras_hub.models.EfficientNetBackbone(
      stackwise_kernel_sizes=[3, 3], stackwise_num_repeats=[1, 1], stackwise_input_filters=[8, 8],
      stackwise_output_filters=[8, 16], stackwise_expansion_ratios=[1, 4],
      stackwise_squeeze_and_excite_ratios=[0, 0.25], stackwise_strides=[1, 2],
      stackwise_block_types=["fused", "unfused"], width_coefficient=1.0, depth_coefficient=1.0, num_features=32)
  converter = keras_hub.layers.EfficientNetImageConverter(image_size=(64, 64), scale=1 / 255.0)
  model = keras_hub.models.EfficientNetImageClassifier(
      backbone, 5, preprocessor=keras_hub.models.EfficientNetImageClassifierPreprocessor(converter), dropout=0.5)
  model.compile(keras.optimizers.Adam(1e-3), keras.losses.CategoricalCrossentropy(from_logits=True))
  with pytest.raises(ValueError, match="compiled with the metric SparseCategoricalAccuracy, for integer labels"):
    progressive.fit(model, demo_records, progressive.plan(2, 2), batch_size=8, normalization="none")  # its default
  model.compile(keras.optimizers.Adam(1e-3), keras.losses.CategoricalCrossentropy(from_logits=True),
                metrics=[keras.metrics.CategoricalAccuracy()])
  epochs, sizes = _Epochs("output_dropout"), []
  sized = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: sizes.append(converter.image_size))
  progressive.fit(model, demo_records, progressive.plan(2, 2, image_size=(32, 40), dropout=(0.1, 0.3)),
                  batch_size=8, normalization="none", steps_per_epoch=2, verbose=0, callbacks=[epochs, sized])
  assert sizes == [(32, 32), (40, 40)] and epochs.rates == pytest.approx([0.1, 0.3])
  assert [e for e, _ in epochs.ended] == [0, 1] and all(np.isfinite(loss) for _, loss in epochs.ended)


def test_a_folder_of_photos_is_read_as_it_is(tmp_path):
  """The demo's photo folder (train/CLASS/*.jpg, 300 photos of 5 classes), not converted: its steps an epoch and
  classes counted from its photos; an unreadable photo left out."""
  photos = tmp_path / "photos"
  shutil.copytree(ROOT / "effnetv2_tf" / "demo_data", photos)
  (photos / "train" / "rose" / "broken.jpg").write_bytes(b"not a jpeg")
  model = _tiny_model([])
  model.compile(keras.optimizers.Adam(1e-3), keras.losses.CategoricalCrossentropy(from_logits=True))
  epochs = _Epochs()
  progressive.fit(model, photos, progressive.plan(1, 1, image_size=(32, 32), dropout=(0.2, 0.2)), batch_size=100,
                  normalization="none", verbose=0, callbacks=[epochs])
  assert epochs.steps == [3] and np.isfinite(epochs.ended[0][1])  # 5 classes: the labels fit the 5 outputs
  with pytest.raises(ValueError, match="holds 5 classes, not num_classes=3: leave it out"):
    progressive.fit(model, photos, progressive.plan(1, 1), batch_size=8, normalization="none", num_classes=3)


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
  square = keras.Input((40, 40, 3))
  fixed = keras.Model(square, keras.layers.Dense(5)(square), name="fixed")
  fixed.compile("adam", keras.losses.CategoricalCrossentropy(from_logits=True))
  with pytest.raises(ValueError, match=r"fixed takes 40x40 images only and the stages train at 32, 40 px: build it "
                                       r"for any size \(input_shape=\(None, None, 3\)"):
    progressive.fit(fixed, demo_records, progressive.plan(2, 2, image_size=(32, 40), dropout=(0.1, 0.1)),
                    batch_size=8, normalization="none")
  with pytest.raises(ValueError, match="3 stages need at least 3 epochs"):
    progressive.plan(2, stages=3)
  with pytest.raises(ValueError, match="the largest batch comes from XLA's memory analysis of the compiled step, on "
                                       "Keras' JAX backend: set KERAS_BACKEND=jax, or give each stage its batch_size"):
    progressive.largest_batches(plain, stages)
  scheduled = _tiny_model([])
  scheduled.compile(keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(1e-3, 100)),
                    keras.losses.CategoricalCrossentropy(from_logits=True))
  with pytest.raises(ValueError, match="has a learning rate schedule, which counts steps, and the stages' batches"):
    progressive.fit(scheduled, demo_records, [stages[0], dataclasses.replace(stages[1], batch_size=16)],
                    batch_size=8, normalization="none")


@pytest.mark.jax
def test_the_same_stages_train_on_the_jax_backend_at_the_largest_batches(demo_records):
  """On Keras' JAX backend (a process of its own: the backend is chosen before Keras loads): each stage the
  largest batch that fits a memory budget (40 images at the last stage's 48 px), from XLA's analysis of the
  compiled step: a multiple of 8 within 2% of the budget with 8 more over it, more images at the smaller sizes;
  then the stages through fit at those batches, each traced at its size with its dropout rate, the learning rate
  scaled with the batch, the epochs of one run."""
  pytest.importorskip("jax", reason="the JAX route is not installed: pip install -e \".[jax]\"")
  script = f"""
import json, keras
from effnetv2_tf import progressive
from tests.test_progressive import _Epochs, _tiny_model
seen = []
model = _tiny_model(seen)
model.compile(keras.optimizers.Adam(1e-3), keras.losses.CategoricalCrossentropy(from_logits=True))
stages = progressive.plan(3, stages=3, image_size=(32, 48), randaug=(2, 6), mixup=(0, 0.2), dropout=(0.1, 0.3))
budget = progressive._step_memory(model, 48, 40) / progressive.MEMORY_SHARE
stages = progressive.largest_batches(model, stages, memory_bytes=budget)
memory = [[progressive._step_memory(model, s.image_size, s.batch_size + extra) / budget for extra in (0, 8)]
          for s in stages]
epochs = _Epochs()
progressive.fit(model, {str(demo_records)!r}, stages, batch_size=8, normalization="none", steps_per_epoch=4,
                verbose=0, callbacks=[epochs])
print("RESULT " + json.dumps({{"backend": keras.backend.backend(), "seen": [s for s in seen if isinstance(s, int)],
                              "batches": [s.batch_size for s in stages], "memory": memory, "rates": epochs.rates,
                              "learning_rates": epochs.learning_rates, "epochs": [e for e, _ in epochs.ended]}}))
"""
  done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300,
                        env={**os.environ, "KERAS_BACKEND": "jax"})
  assert done.returncode == 0, done.stderr[-3000:]
  result = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))[7:])
  assert result["backend"] == "jax" and sorted(set(result["seen"])) == [32, 40, 48]
  batches = result["batches"]
  assert all(batch % 8 == 0 for batch in batches) and batches[0] > batches[1] > batches[2] >= 32, batches
  for fits, over in result["memory"]:
    assert fits <= progressive.MEMORY_SHARE * 1.02 and over > progressive.MEMORY_SHARE * 0.98, result["memory"]
  assert result["learning_rates"] == pytest.approx([1e-3 * batch / 8 for batch in batches])
  assert result["rates"] == pytest.approx([0.1, 0.2, 0.3]) and result["epochs"] == [0, 1, 2]
