"""The JAX engine's state: what a run trains under Keras 3 on JAX, and the compiled step that changes it.

The model, optimizer, learning-rate schedule and objective are the TF engine's (train.recipe, train.losses); the
state travels as arrays (trainable weights; BN statistics and RNG
states; optimizer slots; the EMA's shadows) through a step compiled with jax.jit around Keras' stateless_call,
and comes back updated.

Why a step of our own and not Keras' fit / train_step: Keras' optimizer EMA (`use_ema`) averages the trainable
weights only, with a fixed decay, and writes the averages over the weights at the end of every `fit` call; the
official EMA averages the BN moving statistics too and warms its decay up (min(d, (1 + t) / (10 + t))), and the
stage loop wants host loops of N steps with the run's mean loss and top-1, the TF engine's contract.
"""

import errno
import os

import jax
import keras
import numpy as np
from keras import ops

from effnetv2_tf.engines.jax import processes
from effnetv2_tf.engines.jax.runtime import compiled_bytes
from effnetv2_tf.model import set_dropout_rate, set_survival_prob
from effnetv2_tf.train import losses
from effnetv2_tf.train.engine import CheckpointMismatchError
from effnetv2_tf.train.lr_schedule import warmup_steps
from effnetv2_tf.train.metrics import hits
from effnetv2_tf.train.recipe import build_recipe
from effnetv2_tf.weights.ema import averaged_variables, decay_at


def clipped(gradients, limit):
  """Each gradient clipped to norm `limit`, then all of them to global norm `limit` (the TF engine's order)."""
  def norm(tensors):
    return ops.sqrt(sum(ops.sum(ops.square(t)) for t in tensors))

  gradients = [g * (limit / ops.maximum(norm([g]), limit)) for g in gradients]
  scale = limit / ops.maximum(norm(gradients), limit)
  return [g * scale for g in gradients]


class JaxState:
  """Model, optimizer, EMA and the compiled step of one resolved config, under the JAX backend.

  Args:
    config: the resolved config (hparams.resolve).
    total_steps, steps_per_epoch: as the TF engine's TFState's (the lr schedule's length; warm-up and decay in
      epochs).
  The Keras mixed-precision policy must be set before. The state is replicated on every device (every process's,
  once processes.join joined them) and each global batch split over them (a 1-D mesh, axis "batch"): jax.jit
  compiles one SPMD program, in which a batch is one global array, so batch norm's statistics are over the global
  batch (the official TPU code averaged groups of up to 8 replicas). Each process hands over its own rows of a
  global batch (its input pipeline's batch).
  """

  def __init__(self, config, total_steps, steps_per_epoch):
    self.config = config
    self.global_batch = config.train.batch_size
    train = config.train
    devices = jax.devices()
    for key, batch in (("train.batch_size", train.batch_size), ("eval.batch_size", config.eval.batch_size)):
      if batch % len(devices):
        raise ValueError(f"{key} {batch} does not split over the {len(devices)} devices: make it a multiple of "
                         f"{len(devices)}.")
    mesh = jax.sharding.Mesh(np.array(devices), ("batch",))
    self._replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    self._split = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("batch"))
    # The run's length, read by the schedule at each step and handed to the compiled step as arrays, so that a
    # run fitted to a time budget changes it without compiling again (resize).
    self.total_steps = keras.Variable(total_steps, dtype="int32", trainable=False, name="total_steps")
    self.warmup_steps = keras.Variable(warmup_steps(config, steps_per_epoch), dtype="int32", trainable=False,
                                       name="warmup_steps")
    self.ema_decay = train.ema_decay
    # One program over the global batch: batch norm's statistics are the global batch's without a cross-replica op.
    recipe = build_recipe(config, self.total_steps, self.warmup_steps, steps_per_epoch, synchronized_bn=False)
    self.model, self.learning_rate, self.optimizer = recipe.model, recipe.learning_rate, recipe.optimizer
    decayed = {id(v) for v in losses.decayed_variables(self.model.trainable_variables)}
    self._decayed = [id(v) in decayed for v in self.model.trainable_variables]
    non_trainable = self.model.non_trainable_variables
    self._statistics = [index for index, v in enumerate(non_trainable)
                        if v.path.endswith(("moving_mean", "moving_variance"))]
    self._step_index = next(index for index, v in enumerate(self.optimizer.variables)
                            if v is self.optimizer.iterations)
    self.arrays = None  # the state the compiled step updates: copies of the variables (it donates their buffers)
    self._arrays_from_variables()
    self._train_step, self._train_step_key = None, None
    self._compiled_sizes = set()  # the image sizes the current step was compiled for
    self._eval_step = None

  @property
  def step(self):
    return int(self.arrays["optimizer"][self._step_index])

  def resize(self, config, total_steps, steps_per_epoch):
    """Gives the run `config`'s length (total_steps, warm-up, EMA decay) without compiling its step again."""
    self.total_steps.assign(total_steps)
    self.warmup_steps.assign(warmup_steps(config, steps_per_epoch))
    self.ema_decay = config.train.ema_decay
    self.config = config

  def _arrays_from_variables(self):
    """The state as the model's and the optimizer's variables hold it, the EMA starting from the weights."""
    self.arrays = jax.device_put({
        "trainable": [ops.copy(v.value) for v in self.model.trainable_variables],
        "non_trainable": [ops.copy(v.value) for v in self.model.non_trainable_variables],
        "optimizer": [ops.copy(v.value) for v in self.optimizer.variables],
        "shadows": [ops.copy(v.value) for v in averaged_variables(self.model)],
    }, self._replicated)

  def set_model_weights(self, weights):
    """The model's weights (model.get_weights()'s order: its variables') as the run's, the EMA starting from them."""
    self.model.set_weights(weights)
    self._arrays_from_variables()

  def weights_from_model(self):
    """The model's variables' values (a warm start's) as the run's weights, the EMA starting from them; the
    optimizer's state stays."""
    optimizer = self.arrays["optimizer"]
    self._arrays_from_variables()
    self.arrays["optimizer"] = optimizer

  def reset_momenta(self):
    """Zeroes the optimizer's momentum slots (optimizer.reset_momenta's, on the state's arrays)."""
    self.arrays["optimizer"] = jax.device_put(
        [ops.zeros_like(array) if v.path.endswith("_momentum") else array
         for v, array in zip(self.optimizer.variables, self.arrays["optimizer"])], self._replicated)

  def model_weights(self):
    """The run's weights in model.get_weights()'s order (its variables')."""
    values = {id(v): a for v, a in zip(self.model.trainable_variables, self.arrays["trainable"])}
    values.update({id(v): a for v, a in zip(self.model.non_trainable_variables, self.arrays["non_trainable"])})
    return [np.asarray(values[id(v)]) for v in self.model.weights]

  def save(self, manager):
    """Writes the state (weights, BN statistics and RNG states, optimizer slots and step, the EMA) as `manager`'s
    (orbax_steps.step_manager's) checkpoint of this step, the run's settings (its config.yaml text) in its
    metadata; returns its folder once written, or once the arrays are copied for a manager that writes in the
    background (the step may then donate them)."""
    import orbax.checkpoint as ocp  # here: the step itself runs without TensorFlow (a JAX-only GPU host)
    from effnetv2_tf.checkpoints import orbax_steps
    from effnetv2_tf.run_dir import config_text
    step = self.step
    manager.wait_until_finished()  # as manager.save would: the previous save's space is taken before counting
    try:
      orbax_steps.check_space(manager.directory, sum(leaf.nbytes for leaf in jax.tree.leaves(self.arrays)))
      full = None
    except OSError as error:
      full = error
    if processes.on_any(full is not None):  # every process stops, or none: a save is a collective
      raise full or OSError(errno.ENOSPC, "No space left on device on another process's disk", manager.directory)
    manager.save(step, args=ocp.args.StandardSave(self.arrays),
                 custom_metadata={orbax_steps.SETTINGS: config_text(self.config.to_dict())})
    return orbax_steps.step_folder(manager.directory, step)

  def restore(self, path):
    """Reads the state from the checkpoint folder `path` (a `save`'s; nothing when None), placed as the state is
    (replicated on every device); returns the step. A checkpoint of another model raises
    CheckpointMismatchError."""
    if not path:
      return self.step
    from effnetv2_tf.checkpoints import orbax_steps
    if not orbax_steps.exists(path):
      raise CheckpointMismatchError(f"{path} is not an Orbax checkpoint, which this engine resumes.")
    path = path if "://" in path else os.path.abspath(path)
    target = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=self._replicated), self.arrays)
    try:
      self.arrays = orbax_steps.restore(path, lambda saved: target)
    except (ValueError, KeyError, FileNotFoundError) as error:
      raise CheckpointMismatchError(f"Checkpoint {path} does not fit this model: {str(error)[:300]}") from None
    return self.step

  def averaged(self):
    """(trainable, non-trainable) arrays with the EMA's averages in place of the weights and BN statistics."""
    count = len(self.arrays["trainable"])
    shadows = self.arrays["shadows"]
    non_trainable = list(self.arrays["non_trainable"])
    for index, shadow in zip(self._statistics, shadows[count:]):
      non_trainable[index] = shadow
    return shadows[:count], non_trainable

  def global_batch_of(self, rows):
    """The global arrays of a batch whose rows this process holds (its input pipeline's share), split over the
    devices."""
    return tuple(jax.make_array_from_process_local_data(self._split, array) for array in rows)

  def learning_rate_at(self, step):
    return float(self.learning_rate(step))

  def _step(self, arrays, images, labels, total_steps, warmup, ema_decay):
    train = self.config.train
    non_trainable = arrays["non_trainable"]

    def objective(trainable):
      logits, updated = self.model.stateless_call(trainable, non_trainable, images, training=True)
      logits = ops.cast(logits, "float32")
      per_example = losses.classification_loss(labels, logits, train.label_smoothing, train.loss_type)
      loss = ops.sum(per_example) / self.global_batch
      decayed = [w for w, decays in zip(trainable, self._decayed) if decays]
      return loss + losses.weight_decay_loss(decayed, train.weight_decay), (loss, logits, updated)

    (_, (loss, logits, non_trainable)), gradients = jax.value_and_grad(objective, has_aux=True)(arrays["trainable"])
    if train.gradient_clip > 0:
      gradients = clipped(gradients, train.gradient_clip)
    step_before = arrays["optimizer"][self._step_index]
    mapping = (list(zip(self.model.trainable_variables, arrays["trainable"]))
               + list(zip(self.optimizer.variables, arrays["optimizer"]))
               + [(self.total_steps, total_steps), (self.warmup_steps, warmup)])
    with keras.StatelessScope(state_mapping=mapping) as scope:
      self.optimizer.apply(gradients)
    trainable = [scope.get_current_value(v) for v in self.model.trainable_variables]
    optimizer = [scope.get_current_value(v) for v in self.optimizer.variables]
    decay = decay_at(ema_decay, step_before)
    values = trainable + [non_trainable[index] for index in self._statistics]
    shadows = [decay * shadow + (1.0 - decay) * ops.cast(value, shadow.dtype)
               for shadow, value in zip(arrays["shadows"], values)]
    correct = ops.sum(ops.cast(ops.argmax(logits, -1) == ops.argmax(labels, -1), "float32"))
    updated = {"trainable": trainable, "non_trainable": non_trainable, "optimizer": optimizer, "shadows": shadows}
    return updated, loss, correct

  def train_loop(self, dropout_rate, image_size=None):
    """`loop(batches, num_steps) -> (mean loss, top-1)` over an iterator of (images, labels) arrays; compiled
    again when the dropout rate or the stochastic depth (read while tracing) change, and once per image size."""
    survival_prob = self.config.regularization.survival_prob
    key = dropout_rate, survival_prob
    if self._train_step_key != key:
      set_dropout_rate(self.model, dropout_rate)
      set_survival_prob(self.model, survival_prob)
      self._train_step = jax.jit(self._step, donate_argnums=0)
      self._train_step_key = key
      self._compiled_sizes = set()

    def loop(batches, num_steps):
      loss_sum, correct_sum = 0.0, 0.0
      schedule = (self.total_steps.value, self.warmup_steps.value, np.float32(self.ema_decay))
      for _ in range(num_steps):
        images, labels = self.global_batch_of(next(batches))
        self._compiled_sizes.add(images.shape[1])
        self.arrays, loss, correct = self._train_step(self.arrays, images, labels, *schedule)
        loss_sum, correct_sum = loss_sum + loss, correct_sum + correct
      return float(loss_sum) / num_steps, float(correct_sum) / (num_steps * self.global_batch)

    return loop

  def step_memory(self, dropout_rate, image_size, batch, dtype):
    """Bytes a device needs for the train step at `dropout_rate` compiled for a global batch of `batch` images of
    `image_size` px in `dtype` (split over the devices): runtime.compiled_bytes of the compiled step (nothing is
    run); None where the backend gives no analysis."""
    self.train_loop(dropout_rate)
    images = jax.ShapeDtypeStruct((batch, image_size, image_size, 3), dtype, sharding=self._split)
    labels = jax.ShapeDtypeStruct((batch, self.config.model.num_classes), "float32", sharding=self._split)
    schedule = (self.total_steps.value, self.warmup_steps.value, np.float32(self.ema_decay))
    return compiled_bytes(self._train_step.lower(self.arrays, images, labels, *schedule).compile())

  def _counts(self, trainable, non_trainable, images, labels, weights):
    """(top-1 hits, top-5 hits, examples) of a batch."""
    logits = self.model.stateless_call(trainable, non_trainable, images, training=False)[0]
    return hits(labels, ops.cast(logits, "float32"), weights)

  def evaluate(self, batches, use_ema=True):
    """(top-1 hits, top-5 hits, examples) over `batches` of padded (images, labels, weights) arrays
    (eval_dataset's padded: the padding goes on forever, so the pass ends at the first batch without a real
    example), with the EMA's averages by default."""
    if self._eval_step is None:
      self._eval_step = jax.jit(self._counts)
    trainable, non_trainable = self.averaged() if use_ema else (self.arrays["trainable"], self.arrays["non_trainable"])
    totals = np.zeros(3)
    for batch in batches:
      counts = np.array([float(value) for value in self._eval_step(
          trainable, non_trainable, *self.global_batch_of(batch))])
      if counts[2] == 0:
        break
      totals += counts
    return totals

  def traces_again(self, config, stage):
    """Whether `stage` of `config` needs the step compiled again (another dropout rate, stochastic depth or size)."""
    return (self._train_step_key != (stage.dropout_rate, config.regularization.survival_prob)
            or stage.image_size not in self._compiled_sizes)
