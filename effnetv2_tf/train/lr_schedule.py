"""The official learning-rate schedule: linear warm-up from 0, then exponential (staircase), cosine,
linear or constant decay. The decay curve is not shifted by the warm-up (official behaviour)."""

import math

import keras
from keras import ops

SCHEDULES = ("exponential", "cosine", "linear", "constant")


def warmup_steps(config, steps_per_epoch):
  """The learning-rate warm-up of a resolved config, in steps."""
  return int(config.train.warmup_epochs * steps_per_epoch)


@keras.saving.register_keras_serializable(package="effnetv2_tf")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
  """lr(step) of the official recipe.

  Args:
    base_lr: peak learning rate (already scaled by batch / 256).
    total_steps: steps of the whole run (cosine and linear decay reach lr_min there).
    warmup_steps: linear warm-up length; lr = base_lr * step / warmup_steps before it.
      Both may be variables, read at each step (a run fitted to a time budget sets them after tracing).
    schedule: "exponential", "cosine", "linear" or "constant".
    decay_steps, decay_factor: exponential: base_lr * decay_factor ** floor(step / decay_steps).
    lr_min: floor of the decayed rate.
  """

  def __init__(self, base_lr, total_steps, warmup_steps=0, schedule="exponential", decay_steps=1,
               decay_factor=0.97, lr_min=0.0):
    if schedule not in SCHEDULES:
      raise ValueError(f"Unknown lr schedule {schedule!r}; expected one of {SCHEDULES}.")
    self.base_lr = base_lr
    self.total_steps = total_steps
    self.warmup_steps = warmup_steps
    self.schedule = schedule
    self.decay_steps = decay_steps
    self.decay_factor = decay_factor
    self.lr_min = lr_min

  def __call__(self, step):
    step = ops.cast(step, "float32")
    total_steps, warmup_steps = ops.cast(self.total_steps, "float32"), ops.cast(self.warmup_steps, "float32")
    if self.schedule == "exponential":
      lr = self.base_lr * ops.power(self.decay_factor, ops.floor(step / self.decay_steps))
    elif self.schedule == "cosine":
      lr = 0.5 * self.base_lr * (1 + ops.cos(math.pi * step / total_steps))
    elif self.schedule == "linear":
      lr = (1.0 - step / total_steps) * self.base_lr
    else:
      lr = self.base_lr * ops.ones_like(step)
    lr = ops.maximum(lr, self.lr_min)
    return ops.where(step < warmup_steps, self.base_lr * step / ops.maximum(warmup_steps, 1.0), lr)

  def get_config(self):
    return {"base_lr": self.base_lr, "total_steps": int(self.total_steps), "warmup_steps": int(self.warmup_steps),
            "schedule": self.schedule, "decay_steps": self.decay_steps, "decay_factor": self.decay_factor,
            "lr_min": self.lr_min}
