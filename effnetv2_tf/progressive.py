"""Progressive learning with adaptive regularization for any Keras 3 model trained with `fit`.

The stages come from the trainer's own rules (train.schedule.ProgressiveSchedule, with an epoch as its step): the
image size, RandAugment's magnitude, mixup / cutmix and dropout grow together. `fit` trains each stage with the
model's own `fit` on this package's input pipeline at the stage's size, with the dropout rate set on the model's
classifier dropout layer and the train step traced again (once a stage, on any backend). The model keeps its
compile settings, and the callbacks given (TensorBoard, ModelCheckpoint, ...) see one run's epochs.

  import keras
  from effnetv2_tf import progressive
  model = keras.applications.EfficientNetV2B0(weights=None, classes=5)  # rescales its own 0-255 inputs
  model.compile("adam", keras.losses.CategoricalCrossentropy(), metrics=["accuracy"])  # one-hot (mixed) labels
  stages = progressive.plan(30, stages=3, image_size=(128, 224), randaug=(5, 15), dropout=(0.1, 0.3))
  progressive.fit(model, "my_records", stages, batch_size=32, normalization="none")
"""

import dataclasses
import os

import keras

from effnetv2_tf.train.schedule import ProgressiveSchedule, run_plan

DROPOUT_LAYER = "top_dropout"  # the classifier's dropout in this package's models and keras.applications' EfficientNets


@dataclasses.dataclass(frozen=True)
class FitStage:
  """Epochs [start_epoch, end_epoch) of the run and what they train with."""
  index: int
  start_epoch: int
  end_epoch: int
  image_size: int
  dropout_rate: float
  randaug_magnitude: float
  mixup_alpha: float
  cutmix_alpha: float


def _fit_stages(schedule):
  return [FitStage(s.index, s.start_step, s.end_step, s.image_size, s.dropout_rate, s.randaug_magnitude,
                   s.mixup_alpha, s.cutmix_alpha) for s in schedule.stages]


def plan(epochs, stages=4, *, image_size=(128, 300), randaug=(5.0, 15.0), mixup=(0.0, 0.0), cutmix=(0.0, 0.0),
         dropout=(0.1, 0.3), rule="paper"):
  """The FitStages of `epochs` epochs in `stages` stages, each value going from its (min, max): rule "paper"
  (Algorithm 1: every value linearly, the first stage at the min size) or "official" (google/automl: the sizes
  reach the max in the last stage, dropout stays at its max). Defaults: the paper's V2-S (Table 6)."""
  return _fit_stages(ProgressiveSchedule(int(epochs), stages, tuple(image_size), tuple(randaug), tuple(mixup),
                                         tuple(cutmix), tuple(dropout), rule))


def plan_of(config):
  """The FitStages of one of this package's resolved configs (hparams.resolve): its stages' values as its trainer
  has them, over int(train.epochs) epochs."""
  _, schedule = run_plan(config)
  return _fit_stages(dataclasses.replace(schedule, total_steps=int(config.train.epochs)))


def _source_and_counts(data, steps_per_epoch, num_classes, batch_size):
  """(source, steps a epoch, classes) of `data`: a converted folder's dataset.json gives what is not given."""
  import tensorflow as tf

  from effnetv2_tf.data.facts import tfrecord_facts
  from effnetv2_tf.data.sources import TFRecordSource
  if isinstance(data, tf.data.Dataset):
    if steps_per_epoch is None or num_classes is None:
      raise ValueError("a tf.data.Dataset does not say its size or its classes: give steps_per_epoch= and "
                       "num_classes=.")
    return _DatasetSource(data), steps_per_epoch, num_classes
  facts = tfrecord_facts(str(data))
  if facts is None and (steps_per_epoch is None or num_classes is None):
    raise ValueError(f"{data} has no dataset.json: convert the photos with `python -m effnetv2_tf.data.convert`, "
                     "or give steps_per_epoch= and num_classes=.")
  pattern = os.path.join(str(data), facts.files.get("train", "train-*") if facts else "train-*")
  steps = steps_per_epoch or facts.examples["train"] // batch_size
  return TFRecordSource(pattern), steps, num_classes or facts.num_classes


@dataclasses.dataclass(frozen=True)
class _DatasetSource:
  """A user's tf.data.Dataset of (image, label) as a source (data.sources' interface)."""
  dataset: object

  def __str__(self):
    return "the given tf.data.Dataset"

  def examples(self, input_context=None, seed=None, shuffle=False):
    import tensorflow as tf
    return self.dataset.map(lambda image, label: (image, tf.cast(label, tf.int64), "the given tf.data.Dataset"))


def _dropout_layer(model, stages):
  """The model's classifier dropout layer, or None where every stage has one rate (nothing to set)."""
  if len({stage.dropout_rate for stage in stages}) == 1:
    return None
  try:
    return model.get_layer(DROPOUT_LAYER)
  except ValueError:
    raise ValueError(f"{model.name} has no layer named {DROPOUT_LAYER!r} whose rate the stages could set: name its "
                     "classifier's Dropout layer so, or plan one rate (dropout=(r, r)).") from None


def _check_loss(model):
  loss = getattr(model, "loss", None)
  name = "no loss" if loss is None else loss if isinstance(loss, str) else type(loss).__name__
  if loss is None or "sparse" in name.lower():
    raise ValueError(f"{model.name} is compiled with {name}: the stages' labels are one-hot (mixup and "
                     "cutmix mix them): compile it with keras.losses.CategoricalCrossentropy().")


def fit(model, data, stages, *, batch_size, normalization, augment="randaug", randaug_layers=2,
        crop_area_min=0.05, seed=0, steps_per_epoch=None, num_classes=None, **fit_kwargs):
  """Trains `model` (compiled with a loss for one-hot labels) through `stages` (plan's), a `model.fit` a stage;
  returns the last stage's History.

  Args:
    data: a folder of this package's TFRecords (`python -m effnetv2_tf.data.convert`: its dataset.json gives the
      steps an epoch and the classes), or a tf.data.Dataset of (image, label) at full size: uint8 [H, W, 3] or
      encoded bytes, 0-based int labels (then give steps_per_epoch and num_classes).
    stages: FitStages (plan, plan_of).
    batch_size: images a step.
    normalization: what the model's inputs are: "none" (0-255 floats, for models that rescale their own, as
      keras.applications' do), "center_128" or "mean_std" (this package's: get_model_spec(name).normalization).
    augment: "randaug" (the stages' magnitudes), "autoaug" or None.
    randaug_layers, crop_area_min: RandAugment's ops an image; the random crop's smallest area.
    seed: the stages' data (order, crops, augmentation, mixing) is a function of it.
    fit_kwargs: model.fit's (callbacks, validation_data, verbose, ...), given to each stage's fit; a CSVLogger
      among the callbacks appends the later stages' epochs to its file.
  """
  from effnetv2_tf.data.pipeline import Preprocessing, train_dataset
  from effnetv2_tf.data.seeds import STAGE, derive_seed
  source, steps, classes = _source_and_counts(data, steps_per_epoch, num_classes, batch_size)
  _check_loss(model)
  dropout = _dropout_layer(model, stages)
  history = None
  for stage in stages:
    if dropout is not None:
      dropout.rate = stage.dropout_rate
    model.make_train_function(force=True)  # the rate is read while tracing
    preprocessing = Preprocessing(stage.image_size, normalization, augment=augment,
                                  randaug_magnitude=stage.randaug_magnitude, randaug_layers=randaug_layers,
                                  crop_area_min=crop_area_min, mixup_alpha=stage.mixup_alpha,
                                  cutmix_alpha=stage.cutmix_alpha)
    dataset = train_dataset(source, preprocessing, batch_size=batch_size, num_classes=classes,
                            seed=derive_seed(seed, STAGE, stage.index))
    history = model.fit(dataset, initial_epoch=stage.start_epoch, epochs=stage.end_epoch, steps_per_epoch=steps,
                        shuffle=False, **fit_kwargs)  # the pipeline shuffles
    for callback in fit_kwargs.get("callbacks") or []:
      if isinstance(callback, keras.callbacks.CSVLogger):
        callback.append = True  # the next stage's fit adds its epochs to the file, as one run's
  return history
