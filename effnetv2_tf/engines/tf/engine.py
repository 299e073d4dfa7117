"""The TensorFlow engine (train.engine.Engine): TFState and its Evaluator on any tf.distribute strategy.

TPUStrategy, MirroredStrategy, MultiWorkerMirroredStrategy or the default one; the process is prepared here
(seeds, op determinism, the mixed-precision policy) because TensorFlow and Keras read them globally.
"""

import contextlib
import os
import tempfile

import keras
import tensorflow as tf

from effnetv2_tf.engines.tf.evaluation import Evaluator
from effnetv2_tf.engines.tf.state import TFState, compute_dtype
from effnetv2_tf.train.optimizer import reset_momenta
from effnetv2_tf.train.preemption import SIGNALS
from effnetv2_tf.train.schedule import run_plan
from effnetv2_tf.train.warm_start import warm_start


STOP_SIGNALS = tuple(signum.name for signum in SIGNALS)


def prepare_process(config, runtime):
  """Seeds, determinism and the mixed-precision policy of a job; returns (compute dtype, jit_compile)."""
  if config.runtime.deterministic:
    tf.config.experimental.enable_op_determinism()
  keras.utils.set_random_seed(config.train.seed)
  policy = runtime.mixed_precision_policy(config.runtime.mixed_precision)
  keras.mixed_precision.set_global_policy(policy)
  return compute_dtype(policy), runtime.jit_compile(config.runtime.jit_compile)


def is_chief(strategy):
  resolver = getattr(strategy, "cluster_resolver", None)
  return resolver is None or resolver.task_type in (None, "chief") or (
      resolver.task_type == "worker" and resolver.task_id == 0)


class TFEngine:
  """Trains one resolved config on `runtime` (tpu.strategy.Runtime): its TFState, with the lr schedule
  sized by run_plan, and an Evaluator on `eval_source` (None: the engine cannot evaluate).

  `counts`: a RecordCounts the eval pipeline reports to.
  """

  def __init__(self, config, runtime, eval_source=None, counts=None):
    self.strategy = runtime.strategy
    self.compute_dtype, self.jit_compile = prepare_process(config, runtime)
    steps_per_epoch, schedule = run_plan(config)
    self.state = TFState(config, self.strategy, self.jit_compile, schedule.total_steps, steps_per_epoch)
    self.evaluator = None if eval_source is None else Evaluator.of_state(self.state, eval_source, self.compute_dtype,
                                                                         counts)
    self.is_chief = is_chief(self.strategy)
    self.one_process = not isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy)
    self.replicas = self.strategy.num_replicas_in_sync
    self.parameter_count = self.state.model.count_params()

  @property
  def step(self):
    return self.state.step

  @property
  def warmup_steps(self):
    return int(self.state.warmup_steps.numpy())

  def batches(self, dataset_fn):
    def placed(input_context):
      dataset = dataset_fn(input_context)
      if self.jit_compile:
        return dataset
      # Without XLA one traced step serves every image size: forget the static sizes, so that a new stage does
      # not retrace (about 15 s for a small model on 2 CPU cores).
      return dataset.map(
          lambda images, labels: (tf.compat.v1.placeholder_with_default(images, (None, None, None, 3)), labels))

    return iter(self.strategy.distribute_datasets_from_function(placed))

  def train_loop(self, stage):
    loop = self.state.train_loop(stage.dropout_rate, stage.image_size)
    return lambda batches, num_steps: tuple(float(value) for value in loop(batches, tf.constant(num_steps)))

  def traces_again(self, config, stage):
    return self.state.traces_again(config, stage)

  def evaluate(self, use_ema=True):
    return self.evaluator.evaluate(self.step, use_ema)

  def saver(self, run_dir):
    manager = self.state.checkpoint_manager(run_dir, self.is_chief)
    return lambda step: manager.save(checkpoint_number=step)

  def finish_saves(self):
    pass  # tf.train.CheckpointManager's saves are written when save returns

  def agreed_signal(self, received):
    if self.one_process:
      return received
    # MultiWorkerMirrored: the workers' steps and saves are collectives, so all stop at the same host loop, on
    # the signal any of them received (a sum over the replicas of each signal's flag).
    flags = tf.constant([float(received == name) for name in STOP_SIGNALS])
    values = self.strategy.experimental_distribute_values_from_function(lambda context: flags)
    counts = self.strategy.reduce(tf.distribute.ReduceOp.SUM, values, axis=None).numpy()
    return next((name for name, count in zip(STOP_SIGNALS, counts) if count > 0), None)

  def restore(self, path):
    return self.state.restore(path)

  @contextlib.contextmanager
  def trial_steps(self):
    with tempfile.TemporaryDirectory() as scratch:
      start = self.state.checkpoint.write(os.path.join(scratch, "start"))
      yield
      self.state.restore(start)

  def largest_values(self):
    return self.state.largest_values()

  def resize(self, config, total_steps, steps_per_epoch):
    self.state.resize(config, total_steps, steps_per_epoch)

  def learning_rate(self, step):
    return float(self.state.learning_rate(step))

  def warm_start(self, path, use_ema=True):
    loaded = warm_start(self.state.model, path, use_ema)
    self.state.ema.reset()
    return loaded

  def reset_momenta(self):
    reset_momenta(self.state.optimizer)

  def step_memory(self, stage, batch):
    return None  # TensorFlow gives no memory analysis of a compiled step
