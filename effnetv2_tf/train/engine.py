"""What the stage loop asks of an engine: the interface a framework implements to train our runs.

The stage loop (trainer.py) walks the schedule, builds each stage's tf.data pipeline, sizes host loops, logs,
and calls its hooks; it touches no framework state. Everything that holds or changes the run's numbers (model,
optimizer, EMA, the lr schedule, the compiled step, checkpoints) is the engine's. effnetv2_tf.engines has two,
TensorFlow's (any tf.distribute strategy) and Keras 3 on JAX's; tests/test_engines.py checks that each has every
member below with its signature.
"""

import typing


class CheckpointMismatchError(ValueError):
  """A checkpoint (or a run dir's checkpoints) belongs to another model."""


@typing.runtime_checkable
class Engine(typing.Protocol):
  """The members the stage loop, the time budget and the jobs use. Values cross it as Python numbers,
  configs and paths, never as framework tensors.

  Attributes:
    is_chief: whether this process writes the run folder's files.
    one_process: whether one process drives every device, so that it may size host loops and a time budget
      by its own clock (several workers would each time themselves apart).
    replicas: the devices a global batch is split over.
    parameter_count: the model's parameters.
    compute_dtype: the images' dtype for the input pipeline (a tf.DType: both engines read tf.data).
    jit_compile: whether the step is compiled with XLA (a stage's first loop then includes a compile).
    warmup_steps: the learning-rate warm-up, in steps.
  """

  is_chief: bool
  one_process: bool
  replicas: int
  parameter_count: int
  compute_dtype: typing.Any
  jit_compile: bool
  warmup_steps: int

  @property
  def step(self) -> int:
    """The optimizer's step: the steps trained so far."""

  def batches(self, dataset_fn) -> typing.Iterator:
    """An iterator over the global batches of `dataset_fn(input_context) -> tf.data.Dataset` (one input
    pipeline's batches), spread over the devices and processes."""

  def train_loop(self, stage) -> typing.Callable[[typing.Iterator, int], tuple]:
    """`loop(batches, num_steps) -> (mean loss, top-1)` for `stage` (its dropout rate and image size; the
    config's stochastic depth): compiled once and reused while traces_again says no."""

  def traces_again(self, config, stage) -> bool:
    """Whether `stage` of `config` needs another compiled step than the last train_loop gave."""

  def evaluate(self, use_ema=True) -> dict:
    """{"step", "top1", "top5", "examples", "ema"}: one pass over the eval split, every example once."""

  def saver(self, run_dir) -> typing.Callable[[int], str]:
    """`save(step) -> checkpoint prefix` into run_dir's checkpoints, keeping what runtime.keep_* say; the save
    may go on in the background once the values are copied (finish_saves waits for it)."""

  def finish_saves(self) -> None:
    """Returns once every save started is written (before a stop, a divergence's verdict, the run's end)."""

  def restore(self, path) -> int:
    """Restores model, optimizer, EMA and RNG states from checkpoint `path` (nothing when None); returns the
    step. A checkpoint of another model raises CheckpointMismatchError."""

  def agreed_signal(self, received) -> str | None:
    """The stop signal this process acts on after a host loop, given the one it `received` (a name or None):
    with several processes, the one any of them received, so that all save the same step (every process calls
    it after each host loop)."""

  def trial_steps(self) -> typing.ContextManager:
    """A context whose training steps are undone at its end (model, optimizer, EMA); the compiled step stays."""

  def largest_values(self) -> dict:
    """{name: largest absolute value} of every value a checkpoint saves that training changes."""

  def resize(self, config, total_steps, steps_per_epoch) -> None:
    """Gives the run `config`'s length (total steps, warm-up, EMA decay) without compiling the step again."""

  def learning_rate(self, step) -> float:
    """The learning rate at `step`."""

  def warm_start(self, path, use_ema=True) -> str:
    """Loads initial weights from an official checkpoint or one of our runs and starts the EMA from them;
    returns what was loaded, in words."""

  def reset_momenta(self) -> None:
    """Zeroes the optimizer's momenta (a resume that changed the learning rate's scale)."""

  def step_memory(self, stage, batch) -> int | None:
    """Bytes a device needs to run `stage`'s train step on a global `batch` (split over the replicas), from the
    compiled program's memory analysis (nothing is run); None where the engine has no such analysis."""
