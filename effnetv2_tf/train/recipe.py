"""What a run trains, built from its config once for both engines: the model, the learning-rate schedule and the
optimizer (in keras and keras.ops: either backend).

Each engine holds the run's length as variables of its own kind (read by the schedule at each step, so that a run
fitted to a time budget changes it without compiling its step again) and builds the rest here; the TF engine
inside its strategy's scope. The Keras mixed-precision policy must be set before.
"""

import dataclasses

import keras

from effnetv2_tf.model import model_from_config
from effnetv2_tf.train.lr_schedule import WarmupDecay
from effnetv2_tf.train.optimizer import create_optimizer


@dataclasses.dataclass(frozen=True)
class Recipe:
  model: keras.Model
  learning_rate: WarmupDecay
  optimizer: keras.optimizers.Optimizer


def peak_learning_rate(train, batch_size=None):
  """The schedule's peak: train.lr_base per 256 images of the global batch (train.batch_size unless given)."""
  return train.lr_base * (train.batch_size if batch_size is None else batch_size) / 256


def build_recipe(config, total_steps, warmup_steps, steps_per_epoch, **model_overrides):
  """The Recipe of a resolved config.

  Args:
    total_steps, warmup_steps: the run's length and its warm-up, in steps (numbers or variables).
    steps_per_epoch: examples per epoch / global batch (the exponential decay's period is in epochs).
    model_overrides: model_from_config's (the JAX engine's batch norm is over the global batch already).
  """
  train = config.train
  model = model_from_config(config.model, dropout_rate=config.regularization.dropout_max,
                            survival_prob=config.regularization.survival_prob, **model_overrides)
  learning_rate = WarmupDecay(
      peak_learning_rate(train), total_steps, warmup_steps, train.lr_schedule,
      max(train.lr_decay_epochs * steps_per_epoch, 1.0), train.lr_decay_factor, train.lr_min)
  optimizer = create_optimizer(train.optimizer, learning_rate)
  if keras.mixed_precision.global_policy().name == "mixed_float16":
    optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
  # Slots must exist before the first step: the TF engine cannot create them inside strategy.run, and the JAX
  # engine's compiled step takes them as arrays.
  optimizer.build(model.trainable_variables)
  return Recipe(model, learning_rate, optimizer)
