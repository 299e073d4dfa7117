"""The Keras-3-on-JAX engine (train.engine.Engine): JaxState's step and checkpoints fed by the same tf.data pipeline.

KERAS_BACKEND must be "jax" before Keras loads (main.py sets the backend its --engine names). TensorFlow stays
for input only (tensorflow-cpu on a TPU VM): its batches become NumPy arrays, split over the devices by JaxState.
Several processes (the hosts of a TPU slice, joined by processes.join) train one run: each reads its shard of the
files (one input pipeline of as many as there are processes) and holds its rows of each global batch; process 0
writes the run folder's files, every process its part of each checkpoint.
"""

import contextlib
import os

import jax
import keras
import numpy as np
from keras import ops

from effnetv2_tf.checkpoints.orbax_steps import step_manager
from effnetv2_tf.data.pipeline import explained_data_errors
from effnetv2_tf.engines.jax import processes
from effnetv2_tf.engines.jax.state import JaxState
from effnetv2_tf.model import get_model_spec
from effnetv2_tf.train.evaluation import eval_result, padded_eval_split
from effnetv2_tf.train.schedule import run_plan
from effnetv2_tf.train.warm_start import warm_start
from effnetv2_tf.weights.ema import averaged_variables


class JaxEngine:
  """Trains one resolved config on the local JAX devices (`runtime`: a JaxRuntime), with JaxState's step and an
  eval of `eval_source` (None: the engine cannot evaluate); `counts`: a RecordCounts the pipelines report to."""

  def __init__(self, config, runtime, eval_source=None, counts=None):
    processes.agree({group: repr(values) for group, values in config.to_dict().items()}, "settings")
    keras.utils.set_random_seed(config.train.seed)  # the same initial weights in every process
    self.jit_compile = runtime.jit_compile(config.runtime.jit_compile)  # jax.jit: once per dropout rate and size
    policy = runtime.mixed_precision_policy(config.runtime.mixed_precision)
    keras.mixed_precision.set_global_policy(policy)
    import tensorflow as tf  # the input pipeline's dtype: tf.data hands the images over
    self.compute_dtype = tf.bfloat16 if policy == "mixed_bfloat16" else tf.float32
    steps_per_epoch, schedule = run_plan(config)
    self.state = JaxState(config, schedule.total_steps, steps_per_epoch)
    self.eval_source, self.counts = eval_source, counts
    self.is_chief = jax.process_index() == 0
    self.one_process = jax.process_count() == 1
    self.replicas = jax.device_count()
    self.parameter_count = self.state.model.count_params()
    self._largest = None  # (names, jitted read) of largest_values, built at its first call
    self._manager = None  # the Orbax CheckpointManager of the run's saves, once saver made it

  @property
  def step(self):
    return self.state.step

  @property
  def warmup_steps(self):
    return int(self.state.warmup_steps.value)

  def _input_context(self):
    """This process's input pipeline (None: one process reads the global batches)."""
    if self.one_process:
      return None
    import tensorflow as tf
    return tf.distribute.InputContext(num_input_pipelines=jax.process_count(),
                                      input_pipeline_id=jax.process_index(),
                                      num_replicas_in_sync=jax.process_count())  # one batch per process and step

  def batches(self, dataset_fn):
    return dataset_fn(self._input_context()).as_numpy_iterator()

  def train_loop(self, stage):
    return self.state.train_loop(stage.dropout_rate)

  def step_memory(self, stage, batch):
    return self.state.step_memory(stage.dropout_rate, stage.image_size, batch, self.compute_dtype.name)

  def traces_again(self, config, stage):
    return self.state.traces_again(config, stage)

  def evaluate(self, use_ema=True):
    config = self.state.config
    dataset = padded_eval_split(config, self.eval_source, get_model_spec(config.model.name).normalization,
                                self.compute_dtype, self.counts, self._input_context())
    with explained_data_errors(self.eval_source):
      totals = self.state.evaluate(dataset.as_numpy_iterator(), use_ema)
    return eval_result(self.step, totals, self.eval_source, use_ema)

  def saver(self, run_dir):
    runtime = self.state.config.runtime
    # In the background: the step goes on while Orbax writes the copied arrays (the demo model's save holds the
    # step 0.13 s instead of 0.89 s on a 2-core CPU; more for larger models and on gs://).
    self._manager = step_manager(run_dir.checkpoints, runtime.keep_checkpoints,
                                 runtime.keep_checkpoint_every_hours, background=True)
    return lambda step: self.state.save(self._manager)

  def finish_saves(self):
    if self._manager is not None:
      self._manager.wait_until_finished()

  def restore(self, path):
    processes.agree({"checkpoint": str(path and os.path.basename(path))}, "checkpoints to resume from")
    return self.state.restore(path)

  def agreed_signal(self, received):
    return processes.first_signal(received)

  @contextlib.contextmanager
  def trial_steps(self):
    start = jax.tree.map(lambda array: array.copy(), self.state.arrays)  # the step donates the state's buffers
    yield
    self.state.arrays = start

  def largest_values(self):
    state = self.state
    if self._largest is None:
      model, optimizer = state.model, state.optimizer
      named = [("trainable", i, v.path) for i, v in enumerate(model.trainable_variables)]
      named += [("non_trainable", i, v.path) for i, v in enumerate(model.non_trainable_variables)]
      named += [("shadows", i, f"the EMA of {v.path}") for i, v in enumerate(averaged_variables(model))]
      named += [("optimizer", i, v.path) for i, v in enumerate(optimizer.variables) if len(v.shape) > 0]
      named = [(group, i, name) for group, i, name in named
               if keras.backend.is_float_dtype(state.arrays[group][i].dtype) and state.arrays[group][i].size]
      read = jax.jit(lambda arrays: ops.stack([ops.max(ops.abs(ops.cast(arrays[group][i], "float32")))
                                               for group, i, _ in named]))
      self._largest = [name for _, _, name in named], read
    names, read = self._largest
    return dict(zip(names, np.asarray(read(state.arrays)).tolist()))

  def resize(self, config, total_steps, steps_per_epoch):
    self.state.resize(config, total_steps, steps_per_epoch)

  def learning_rate(self, step):
    return self.state.learning_rate_at(step)

  def warm_start(self, path, use_ema=True):
    loaded = warm_start(self.state.model, path, use_ema)
    self.state.weights_from_model()
    return loaded

  def reset_momenta(self):
    self.state.reset_momenta()
