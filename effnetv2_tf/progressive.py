"""Progressive learning with adaptive regularization for any Keras 3 model trained with `fit`.

The stages come from the trainer's own rules (train.schedule.ProgressiveSchedule, with an epoch as its step): the
image size, RandAugment's magnitude, mixup / cutmix and dropout grow together. `fit` trains each stage with the
model's own `fit` on this package's input pipeline at the stage's size, with the dropout rate set on the model's
classifier dropout layer and the train step traced again (once a stage, on any backend). The model keeps its
compile settings, and the callbacks given (TensorBoard, ModelCheckpoint, BackupAndRestore, ...) see one run's
epochs. `largest_batches` gives each stage the largest batch that fits at its size (XLA's memory analysis on Keras'
JAX backend); `fit` then scales the learning rate with the batch, as this package's trainer does.

  from effnetv2_tf import progressive
  stages = progressive.plan(30, stages=3, image_size=(128, 224), randaug=(5, 15), dropout=(0.1, 0.3))
  progressive.fit(model, "my_records", stages, batch_size=32, normalization="none")

docs/progressive-fit.md has a keras.applications model built for any size and compiled for one-hot labels.
"""

import dataclasses
import functools
import json
import os

import keras
import numpy as np

from effnetv2_tf.train.plan import MEMORY_SHARE, fitting_batch
from effnetv2_tf.train.schedule import ProgressiveSchedule, run_plan

# The classifier's dropout: top_dropout in this package's models and keras.applications' EfficientNets,
# output_dropout in keras-hub's ImageClassifiers.
DROPOUT_LAYERS = ("top_dropout", "output_dropout")


@dataclasses.dataclass(frozen=True)
class FitStage:
  """Epochs [start_epoch, end_epoch) of the run and what they train with; batch_size None: fit's."""
  index: int
  start_epoch: int
  end_epoch: int
  image_size: int
  dropout_rate: float
  randaug_magnitude: float
  mixup_alpha: float
  cutmix_alpha: float
  batch_size: int | None = None


def _fit_stages(schedule):
  return [FitStage(s.index, s.start_step, s.end_step, s.image_size, s.dropout_rate, s.randaug_magnitude,
                   s.mixup_alpha, s.cutmix_alpha) for s in schedule.stages]


def plan(epochs, stages=4, *, image_size=(128, 300), randaug=(5.0, 15.0), mixup=(0.0, 0.0), cutmix=(0.0, 0.0),
         dropout=(0.1, 0.3), rule="paper"):
  """The FitStages of `epochs` epochs in `stages` stages, each value going from its (min, max): rule "paper"
  (Algorithm 1: every value linearly, the first stage at the min size) or "official" (google/automl: the sizes
  reach the max in the last stage, dropout stays at its max). Defaults: the paper's V2-S (Table 6)."""
  if int(epochs) < stages:
    raise ValueError(f"{stages} stages need at least {stages} epochs (got {epochs}): plan fewer stages or more epochs.")
  return _fit_stages(ProgressiveSchedule(int(epochs), stages, tuple(image_size), tuple(randaug), tuple(mixup),
                                         tuple(cutmix), tuple(dropout), rule))


def plan_of(config):
  """The FitStages of one of this package's resolved configs (hparams.resolve): its stages' values as its trainer
  has them, over int(train.epochs) epochs."""
  _, schedule = run_plan(config)
  return _fit_stages(dataclasses.replace(schedule, total_steps=int(config.train.epochs)))


def _step_memory(model, image_size, batch):
  """Bytes one device needs for the model's train step (forward, backward and the optimizer's update, as Keras'
  JAX trainer runs it, the state donated) on `batch` images of `image_size` px: XLA's memory analysis of the step
  compiled for that shape (nothing run)."""
  import jax

  from effnetv2_tf.engines.jax.runtime import compiled_bytes
  optimizer, loss_fn = model.optimizer, keras.losses.get(model.loss)
  if not optimizer.built:
    optimizer.build(model.trainable_variables)

  def step(trainable, non_trainable, optimizer_variables, images, labels):
    def loss(trainable):
      predictions, non_trainable_after = model.stateless_call(trainable, non_trainable, images, training=True)
      return loss_fn(labels, predictions), non_trainable_after

    (_, non_trainable), grads = jax.value_and_grad(loss, has_aux=True)(trainable)
    trainable, optimizer_variables = optimizer.stateless_apply(optimizer_variables, grads, trainable)
    return trainable, non_trainable, optimizer_variables

  state = [[v.value for v in variables] for variables in
           (model.trainable_variables, model.non_trainable_variables, optimizer.variables)]
  images = jax.ShapeDtypeStruct((batch, image_size, image_size, 3), "float32")
  outputs = jax.eval_shape(lambda x: model.stateless_call(*state[:2], x)[0], images)
  labels = jax.ShapeDtypeStruct(outputs.shape, "float32")
  return compiled_bytes(jax.jit(step, donate_argnums=(0, 1, 2)).lower(*state, images, labels).compile())


def largest_batches(model, stages, *, memory_bytes=None, share=MEMORY_SHARE):
  """`stages` with each one's batch_size the largest that fits one device at its image size: the memory of the
  model's train step compiled for 8 and 16 images (_step_memory), taken as linear in the batch, against `share` of
  `memory_bytes` (default: what the device's allocator may hand out, a CPU device's part of half the host's
  available memory); a multiple of 8. On Keras' JAX backend, with the model compiled (its optimizer and loss are
  in the step)."""
  if keras.backend.backend() != "jax":
    raise ValueError("the largest batch comes from XLA's memory analysis of the compiled step, on Keras' JAX "
                     "backend: set KERAS_BACKEND=jax, or give each stage its batch_size (dataclasses.replace).")
  from effnetv2_tf.engines.jax.runtime import jax_runtime
  if memory_bytes is None:
    runtime = jax_runtime()
    memory_bytes = runtime.memory_size()
    if memory_bytes is None:
      raise ValueError(f"this {runtime.platform} does not report its memory: give memory_bytes=, the bytes the "
                       "step may take.")
  _check_loss(model)
  sized = []
  for stage in stages:
    batch, _, _ = fitting_batch(functools.partial(_step_memory, model, stage.image_size), memory_bytes, share)
    if batch == 0:
      raise ValueError(f"not one image of {stage.image_size} px fits the step in {share:.0%} of "
                       f"{memory_bytes / 2**30:.2f} GiB: a smaller model or size, or more memory.")
    sized.append(dataclasses.replace(stage, batch_size=batch))
  return sized


def _source_and_counts(data, steps_per_epoch, num_classes, batch_size):
  """(source, steps a epoch at batch_size, classes) of `data`: a tf.data.Dataset, a folder the converter wrote
  (its dataset.json gives what is not given) or a folder of photos in class folders."""
  import tensorflow as tf

  from effnetv2_tf.data.facts import tfrecord_facts
  from effnetv2_tf.data.sources import TFRecordSource
  if isinstance(data, tf.data.Dataset):
    if steps_per_epoch is None or num_classes is None:
      raise ValueError("a tf.data.Dataset does not say its size or its classes: give steps_per_epoch= and "
                       "num_classes=.")
    return _DatasetSource(data, "the given tf.data.Dataset"), steps_per_epoch, num_classes
  facts = tfrecord_facts(str(data))
  if facts is None and not tf.io.gfile.glob(os.path.join(str(data), "train-*")):
    return _photo_folder(data, steps_per_epoch, num_classes, batch_size)
  if facts is None and (steps_per_epoch is None or num_classes is None):
    raise ValueError(f"{data} has no dataset.json: convert the photos with `python -m effnetv2_tf.data.convert`, "
                     "or give steps_per_epoch= and num_classes=.")
  pattern = os.path.join(str(data), facts.files.get("train", "train-*") if facts else "train-*")
  steps = steps_per_epoch or facts.examples["train"] // batch_size
  return TFRecordSource(pattern), steps, num_classes or facts.num_classes


def _photo_folder(folder, steps_per_epoch, num_classes, batch_size):
  """The train photos of FOLDER/train/CLASS/* (or FOLDER/CLASS/*), labelled as the converter labels them (the
  class names in order), read as the pipeline goes."""
  import tensorflow as tf

  from effnetv2_tf.data.convert import class_names, find_splits
  splits, _ = find_splits(folder)
  if "train" not in splits:
    raise ValueError(f"{folder} has no train/ folder of class folders (found {', '.join(sorted(splits))}): "
                     "name the training split train/.")
  classes = class_names(splits)
  if num_classes is not None and num_classes != len(classes):
    raise ValueError(f"{folder} holds {len(classes)} classes, not num_classes={num_classes}: leave it out.")
  label_of = {name: label for label, name in enumerate(classes)}
  paths = [str(path) for path, _ in splits["train"]]
  labels = [label_of[name] for _, name in splits["train"]]
  photos = tf.data.Dataset.from_tensor_slices((paths, labels)).map(lambda path, label: (tf.io.read_file(path), label))
  return _DatasetSource(photos, str(folder)), steps_per_epoch or len(paths) // batch_size, len(classes)


@dataclasses.dataclass(frozen=True)
class _DatasetSource:
  """A tf.data.Dataset of (image, label) as a source (data.sources' interface), named `origin` in messages."""
  dataset: object
  origin: str

  def __str__(self):
    return self.origin

  def examples(self, input_context=None, seed=None, shuffle=False):
    import tensorflow as tf
    return self.dataset.map(lambda image, label: (image, tf.cast(label, tf.int64), self.origin))


def _dropout_layer(model, stages):
  """The model's classifier dropout layer, or None where every stage has one rate (nothing to set)."""
  if len({stage.dropout_rate for stage in stages}) == 1:
    return None
  names = {layer.name for layer in model.layers}
  for name in DROPOUT_LAYERS:
    if name in names:
      return model.get_layer(name)
  raise ValueError(f"{model.name} has no layer named {' or '.join(map(repr, DROPOUT_LAYERS))} whose rate the stages "
                   "could set: name its classifier's Dropout layer so, or plan one rate (dropout=(r, r)).")


def _image_converter(model):
  """A keras-hub task's image converter, which resizes every image to its image_size in fit's input (the stages
  set it to theirs), or None."""
  converter = getattr(getattr(model, "preprocessor", None), "image_converter", None)
  return converter if getattr(converter, "image_size", None) is not None else None


def _check_sizes(model, stages):
  """A model built for one image size (keras.applications' with include_top=True) cannot take the stages'."""
  inputs = getattr(model, "inputs", None)
  fixed = tuple(inputs[0].shape[1:3]) if inputs else (None, None)
  sizes = sorted({stage.image_size for stage in stages})
  if None not in fixed and any(fixed != (size, size) for size in sizes):
    raise ValueError(f"{model.name} takes {fixed[0]}x{fixed[1]} images only and the stages train at "
                     f"{', '.join(map(str, sizes))} px: build it for any size (input_shape=(None, None, 3); "
                     "keras.applications: include_top=False, pooling='avg' and a head of your own).")


def _sparse_metric(config):
  """The first metric of a compile config (get_compile_config) made for integer labels, or None."""
  metrics = [*(config.get("metrics") or []), *(config.get("weighted_metrics") or [])]
  names = [metric if isinstance(metric, str) else metric.get("class_name", "") if isinstance(metric, dict) else
           type(metric).__name__ for metric in metrics]
  return next((name for name in names if "sparse" in name.lower()), None)


def _check_loss(model):
  """The stages' labels are one-hot: the loss and the metrics must take them (keras-hub's compile defaults to
  sparse ones)."""
  loss = getattr(model, "loss", None)
  name = "no loss" if loss is None else loss if isinstance(loss, str) else type(loss).__name__
  if loss is None or "sparse" in name.lower():
    raise ValueError(f"{model.name} is compiled with {name}: the stages' labels are one-hot (mixup and "
                     "cutmix mix them): compile it with keras.losses.CategoricalCrossentropy().")
  metric = _sparse_metric(model.get_compile_config() or {})
  if metric is not None:
    raise ValueError(f"{model.name} is compiled with the metric {metric}, for integer labels: the stages' labels "
                     "are one-hot (mixup and cutmix mix them): compile it with "
                     "metrics=[keras.metrics.CategoricalAccuracy()].")


def _learning_rate(model, stages, batch_size):
  """The compiled learning rate (the one for `batch_size` images), or None where every stage trains at it."""
  if all(stage.batch_size in (None, batch_size) for stage in stages):
    return None
  rate = model.optimizer.get_config()["learning_rate"]
  if not isinstance(rate, (int, float)):
    raise ValueError(f"{model.name}'s optimizer has a learning rate schedule, which counts steps, and the stages' "
                     "batches change the steps an epoch: compile it with a float learning rate, or give every stage "
                     "one batch size.")
  return float(rate)


class _StageRate(keras.callbacks.Callback):
  """Sets the optimizer's learning rate as a stage's fit begins: after a BackupAndRestore has loaded the backup,
  whose optimizer state holds the rate it was saved with."""

  def __init__(self, rate):
    super().__init__()
    self.rate = rate

  def on_train_begin(self, logs=None):
    self.model.optimizer.learning_rate = self.rate


class _EpochMasks(keras.callbacks.Callback):
  """Sets the model's random states (its dropout and stochastic depth's Keras SeedGenerators, which
  BackupAndRestore does not back up) from the run's seed and the epoch as each epoch begins: an epoch resumed
  draws the masks it drew in an uninterrupted run."""

  def __init__(self, seed):
    super().__init__()
    self.seed = seed

  def on_epoch_begin(self, epoch, logs=None):
    from effnetv2_tf.data.seeds import MASKS, derive_seed
    states = [v for v in self.model.non_trainable_variables if v.path.endswith("seed_generator_state")]
    for index, state in enumerate(states):
      state.assign(np.array([derive_seed(self.seed, MASKS, epoch, index) % 2**31, 0], dtype=state.dtype))


class _TorchStepMasks(keras.callbacks.Callback):
  """On Keras' PyTorch backend a Dropout without a seed of its own draws from torch's global generator, which fit's
  data loader draws from too as a fit begins: seeded from the run's seed, the epoch and the step as each step
  begins (its batch already read), the masks are the same in an epoch resumed."""

  def __init__(self, seed):
    super().__init__()
    self.seed = seed

  def on_epoch_begin(self, epoch, logs=None):
    self.epoch = epoch

  def on_train_batch_begin(self, batch, logs=None):
    import torch

    from effnetv2_tf.data.seeds import MASKS, derive_seed
    torch.manual_seed(derive_seed(self.seed, MASKS, self.epoch, -1, batch))


def _epochs_done(callbacks):
  """The epochs a keras.callbacks.BackupAndRestore among `callbacks` has backed up (Keras' training_metadata.json,
  or its previous copy), and the callback; (0, None) without one."""
  backup = next((c for c in callbacks if isinstance(c, keras.callbacks.BackupAndRestore)), None)
  if backup is None:
    return 0, None
  path = os.path.join(backup.backup_dir, "training_metadata.json")
  for candidate in (path, path + ".bkp"):  # Keras falls back on the copy when the latest is unreadable
    try:
      with open(candidate) as f:
        return int(json.load(f)["epoch"]), backup
    except (OSError, ValueError, KeyError):
      continue
  return 0, backup


def fit(model, data, stages, *, batch_size, normalization, augment="randaug", randaug_layers=2,
        crop_area_min=0.05, seed=0, steps_per_epoch=None, num_classes=None, **fit_kwargs):
  """Trains `model` (compiled with a loss for one-hot labels) through `stages` (plan's), a `model.fit` a stage;
  returns the last stage's History.

  Args:
    data: a folder of this package's TFRecords (`python -m effnetv2_tf.data.convert`: its dataset.json gives the
      steps an epoch and the classes), a folder of photos (train/CLASS/* or CLASS/*: its photos give them; read
      and decoded at every epoch, where converted records are read faster), or a tf.data.Dataset of (image,
      label) at full size: uint8 [H, W, 3] or encoded bytes, 0-based int labels (then give steps_per_epoch and
      num_classes).
    stages: FitStages (plan, plan_of).
    batch_size: images a step, in the stages without a batch_size of their own (largest_batches); the compiled
      learning rate is the one for it, and a stage of b images trains at b / batch_size times it (a float rate:
      the linear rule of this package's trainer).
    normalization: what the model's inputs are: "none" (0-255 floats, for models that rescale their own, as
      keras.applications' do), "center_128" or "mean_std" (this package's: get_model_spec(name).normalization).
    augment: "randaug" (the stages' magnitudes), "autoaug" or None.
    randaug_layers, crop_area_min: RandAugment's ops an image; the random crop's smallest area.
    seed: the stages' data (order, crops, augmentation, mixing) and each epoch's dropout masks are functions of it.
    fit_kwargs: model.fit's (callbacks, validation_data, verbose, ...), given to each stage's fit; a CSVLogger
      among the callbacks appends the later stages' epochs to its file. With a keras.callbacks.BackupAndRestore
      (save_freq="epoch"), a run started again resumes at the epoch backed up, in its stage, on the data an
      uninterrupted run would have had there; the backup is kept between stages and deleted (as the callback
      says) at the run's end.
  """
  from effnetv2_tf.data.pipeline import Preprocessing, train_dataset
  from effnetv2_tf.data.seeds import STAGE, derive_seed
  source, steps, classes = _source_and_counts(data, steps_per_epoch, num_classes, batch_size)
  _check_loss(model)
  _check_sizes(model, stages)
  dropout = _dropout_layer(model, stages)
  converter = _image_converter(model)
  learning_rate = _learning_rate(model, stages, batch_size)
  callbacks = list(fit_kwargs.pop("callbacks", None) or [])
  done, backup = _epochs_done(callbacks)
  delete_backup = backup is not None and backup.delete_checkpoint
  masks = [_EpochMasks(seed)] + ([_TorchStepMasks(seed)] if keras.backend.backend() == "torch" else [])
  history = None
  for stage in stages:
    if stage.end_epoch <= done:
      continue  # backed up whole
    first_epoch = max(stage.start_epoch, done)
    if backup is not None:
      backup.delete_checkpoint = delete_backup and stage is stages[-1]  # Keras deletes it at each fit's end
    for callback in callbacks:
      if isinstance(callback, keras.callbacks.CSVLogger) and first_epoch > 0:
        callback.append = True  # the epochs before are in the file, as one run's
    stage_batch = stage.batch_size or batch_size
    stage_steps = max(steps * batch_size // stage_batch, 1)  # the images an epoch stay
    stage_rate = [] if learning_rate is None else [_StageRate(learning_rate * stage_batch / batch_size)]
    if dropout is not None:
      dropout.rate = stage.dropout_rate
    if converter is not None:
      converter.image_size = (stage.image_size, stage.image_size)
    model.make_train_function(force=True)  # the dropout rate is read while tracing
    preprocessing = Preprocessing(stage.image_size, normalization, augment=augment,
                                  randaug_magnitude=stage.randaug_magnitude, randaug_layers=randaug_layers,
                                  crop_area_min=crop_area_min, mixup_alpha=stage.mixup_alpha,
                                  cutmix_alpha=stage.cutmix_alpha)
    dataset = train_dataset(source, preprocessing, batch_size=stage_batch, num_classes=classes,
                            seed=derive_seed(seed, STAGE, stage.index),
                            skip_steps=(first_epoch - stage.start_epoch) * stage_steps)
    history = model.fit(dataset, initial_epoch=first_epoch, epochs=stage.end_epoch, steps_per_epoch=stage_steps,
                        shuffle=False, callbacks=callbacks + stage_rate + masks, **fit_kwargs)  # the pipeline shuffles
  return history
