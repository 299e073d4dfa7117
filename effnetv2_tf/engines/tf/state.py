"""The TF engine's state: what a run trains and saves under TensorFlow, and the traced step that changes it.

TFState builds, inside the strategy's scope, the run's recipe (train.recipe: model, warm-up + decay schedule,
optimizer), the EMA of the weights, and the tf.train.Checkpoint holding them with the dropout / stochastic-depth RNG
states and the run's settings (checkpoints.tf_prefixes says what a prefix holds). `train_loop` is the traced
function running steps_per_loop distributed steps; it needs no data of its own, so the doctor can time it on a
synthetic batch.
"""

import math

import keras
import tensorflow as tf

from effnetv2_tf.checkpoints import tf_prefixes
from effnetv2_tf.engines.tf.ema import ExponentialMovingAverage
from effnetv2_tf.model import set_dropout_rate, set_survival_prob
from effnetv2_tf.run_dir import config_text
from effnetv2_tf.train import losses
from effnetv2_tf.train.engine import CheckpointMismatchError
from effnetv2_tf.train.lr_schedule import warmup_steps
from effnetv2_tf.train.recipe import build_recipe
from effnetv2_tf.weights.ema import averaged_variables


def compute_dtype(policy):
  return {"mixed_bfloat16": tf.bfloat16, "mixed_float16": tf.float16}.get(policy, tf.float32)


class TFState:
  """Model, optimizer, EMA and checkpoint of one resolved config, and its train loop.

  Args:
    config: the resolved config (hparams.resolve).
    strategy: the tf.distribute strategy; everything is built in its scope.
    jit_compile: compile each step with XLA.
    total_steps: steps of the whole run (the lr schedule's length).
    steps_per_epoch: examples per epoch / global batch (warm-up and decay are in epochs).
  The Keras mixed-precision policy must be set before.
  """

  def __init__(self, config, strategy, jit_compile, total_steps, steps_per_epoch):
    self.config = config
    self.strategy = strategy
    self.jit_compile = jit_compile
    self.global_batch = config.train.batch_size
    with strategy.scope():
      # The run's length, read at each step but not checkpointed as a number (the settings hold it): a run fitted
      # to a time budget sets it after its step is traced (resize).
      self.total_steps = tf.Variable(total_steps, trainable=False, name="total_steps")
      self.warmup_steps = tf.Variable(warmup_steps(config, steps_per_epoch), trainable=False, name="warmup_steps")
      self.ema_decay = tf.Variable(config.train.ema_decay, trainable=False, name="ema_decay", dtype=tf.float32)
      recipe = build_recipe(config, self.total_steps, self.warmup_steps, steps_per_epoch)
      self.model, self.learning_rate, self.optimizer = recipe.model, recipe.learning_rate, recipe.optimizer
      self.ema = ExponentialMovingAverage(averaged_variables(self.model), self.ema_decay)
    self.decayed = losses.decayed_variables(self.model.trainable_variables)
    # Dropout / stochastic-depth RNG states are not part of the model's checkpoint; without them a
    # resumed run would draw other masks than an uninterrupted one.
    rng_states = [v for v in self.model.variables if v.path.endswith("seed_generator_state")]
    # The run's settings travel inside each checkpoint, config.yaml's stand-in where that is lost: a string on
    # the host. Restores read without them, so that checkpoints of versions before them load as well.
    with tf.device("/cpu:0"):
      self.settings = tf.Variable(config_text(config.to_dict()), trainable=False, name="settings")
    saved = dict(model=self.model, optimizer=self.optimizer, ema=self.ema, rng_states=rng_states)
    self._restorable = tf.train.Checkpoint(**saved)
    self.checkpoint = tf.train.Checkpoint(**saved, **{tf_prefixes.SETTINGS: self.settings})
    self._train_loop, self._train_loop_key = None, None
    self._largest = None  # (names, traced read) of largest_values, built at its first call

  def resize(self, config, total_steps, steps_per_epoch):
    """Gives the run `config`'s length (total_steps, warm-up, EMA decay) without retracing its step."""
    self.total_steps.assign(total_steps)
    self.warmup_steps.assign(warmup_steps(config, steps_per_epoch))
    self.ema_decay.assign(config.train.ema_decay)
    self.settings.assign(config_text(config.to_dict()))
    self.config = config

  @property
  def step(self):
    return int(self.optimizer.iterations.numpy())

  def restore(self, path):
    """Restores model, optimizer, EMA and RNG states from checkpoint `path` (nothing when None); returns
    the step."""
    if not path:
      return self.step
    if not tf_prefixes.exists(path):
      raise CheckpointMismatchError(f"{path} is not a TensorFlow checkpoint, which this engine resumes.")
    try:
      self._restorable.read(path).assert_existing_objects_matched().expect_partial()
    except (AssertionError, ValueError, tf.errors.InvalidArgumentError) as error:
      raise CheckpointMismatchError(f"Checkpoint {path} does not fit this model: {str(error)[:300]}") from None
    return self.step

  def largest_values(self):
    """{name: largest absolute value} of every value a checkpoint saves that training changes: the model's
    weights and BN statistics, their EMA and the optimizer's slots (not its scalars: step, learning rate,
    loss scale). One traced function reads them all: about 3 ms a call where eager reads took 40."""
    if self._largest is None:
      named = [(v.path, v) for v in self.model.variables]
      named += [(f"the EMA of {v.path}", shadow)
                for v, shadow in zip(averaged_variables(self.model), self.ema.shadows)]
      named += [(v.path, v) for v in self.optimizer.variables if len(v.shape) > 0]
      named = [(name, v) for name, v in named if keras.backend.is_float_dtype(v.dtype) and math.prod(v.shape)]
      read = tf.function(lambda: tf.stack([tf.reduce_max(tf.abs(tf.cast(v, tf.float32))) for _, v in named]))
      self._largest = [name for name, _ in named], read
    names, read = self._largest
    return dict(zip(names, read().numpy().tolist()))

  def checkpoint_manager(self, run_dir, is_chief=True):
    """Saves into run_dir's checkpoints; the other MultiWorkerMirrored workers (which must save too) into
    scratch folders of their own."""
    runtime = self.config.runtime
    directory = run_dir.checkpoints
    if not is_chief:
      directory = run_dir.worker_checkpoints(self.strategy.cluster_resolver.task_id)
    return tf.train.CheckpointManager(self.checkpoint, directory, checkpoint_name=tf_prefixes.NAME,
                                      max_to_keep=runtime.keep_checkpoints,
                                      keep_checkpoint_every_n_hours=runtime.keep_checkpoint_every_hours)

  def _train_step(self, images, labels):
    train = self.config.train
    variables = self.model.trainable_variables
    with tf.GradientTape() as tape:
      logits = tf.cast(self.model(images, training=True), tf.float32)
      per_example = losses.classification_loss(labels, logits, train.label_smoothing, train.loss_type)
      loss = tf.nn.compute_average_loss(per_example, global_batch_size=self.global_batch)
      # Each replica adds its share so that the all-reduced gradient holds the decay once.
      decay = losses.weight_decay_loss(self.decayed, train.weight_decay) / self.strategy.num_replicas_in_sync
      total = loss + decay
      loss_scaled = isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer)
      if loss_scaled:
        total = self.optimizer.scale_loss(total)
    gradients = tape.gradient(total, variables)
    if train.gradient_clip > 0:
      # Loss-scaled gradients are unscaled only inside apply_gradients: clip at the scaled threshold.
      limit = train.gradient_clip * (tf.cast(self.optimizer.dynamic_scale, tf.float32) if loss_scaled else 1.0)
      gradients = [tf.clip_by_norm(g, limit) for g in gradients]
      gradients, _ = tf.clip_by_global_norm(gradients, limit)
    step_before = tf.identity(self.optimizer.iterations)
    self.optimizer.apply_gradients(zip(gradients, variables))
    self.ema.update(step_before)
    correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, -1), tf.argmax(labels, -1)), tf.float32))
    return loss, correct

  def train_loop(self, dropout_rate, image_size):
    """The traced loop for a stage, `loop(iterator, num_steps) -> (mean loss, top-1)`: reused while the
    dropout rate and stochastic depth (read at trace time) and, under XLA, the image size stay the same."""
    survival_prob = self.config.regularization.survival_prob  # the run's: a short photos-* run has none
    key = self._loop_key(dropout_rate, survival_prob, image_size)
    if self._train_loop_key != key:
      set_dropout_rate(self.model, dropout_rate)
      set_survival_prob(self.model, survival_prob)
      self._train_loop = self._make_train_loop()
      self._train_loop_key = key
    return self._train_loop

  def traces_again(self, config, stage):
    """Whether `stage` of `config` needs the loop traced again (the traced one is the last train_loop gave)."""
    return self._train_loop_key != self._loop_key(stage.dropout_rate, config.regularization.survival_prob,
                                                  stage.image_size)

  def _loop_key(self, dropout_rate, survival_prob, image_size):
    return dropout_rate, survival_prob, image_size if self.jit_compile else None

  def _make_train_loop(self):
    step_fn = tf.function(self._train_step, jit_compile=self.jit_compile)

    @tf.function
    def train_loop(iterator, num_steps):
      loss_sum = tf.constant(0.0)
      correct_sum = tf.constant(0.0)
      for _ in tf.range(num_steps):
        loss, correct = self.strategy.run(step_fn, args=next(iterator))
        loss_sum += self.strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
        correct_sum += self.strategy.reduce(tf.distribute.ReduceOp.SUM, correct, axis=None)
      steps = tf.cast(num_steps, tf.float32)
      return loss_sum / steps, correct_sum / (steps * self.global_batch)

    return train_loop
