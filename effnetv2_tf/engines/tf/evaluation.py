"""The TF engine's eval: top-1 / top-5 on the padded eval split, compiled like the train step, with static shapes
on any tf.distribute strategy.
"""

import tensorflow as tf

from effnetv2_tf.data.pipeline import explained_data_errors
from effnetv2_tf.model import get_model_spec
from effnetv2_tf.train.evaluation import eval_result, padded_eval_split
from effnetv2_tf.train.metrics import hits


class Evaluator:
  """Evaluates `model` (with `ema`'s averaged weights by default) on `source` at the config's eval size.

  Args:
    config: the resolved config (eval.image_size, eval.batch_size, model.num_classes).
    source: the eval split (a TFRecordSource or TFDSSource).
    strategy: the tf.distribute strategy the model was built under.
    model, ema: the model and its ExponentialMovingAverage.
    normalization: the model family's input normalization.
    compute_dtype: the images' dtype (the mixed-precision policy's compute dtype).
    jit_compile: compile the eval step with XLA.
    counts: a RecordCounts the dataset reports to (optional).
  """

  def __init__(self, config, source, strategy, model, ema, normalization, compute_dtype, jit_compile, counts=None):
    self.config = config
    self.source = source
    self.strategy = strategy
    self.model = model
    self.ema = ema
    self.normalization = normalization
    self.compute_dtype = compute_dtype
    self.counts = counts
    self._step = self._make_step(jit_compile)

  @classmethod
  def of_state(cls, state, source, compute_dtype, counts=None):
    """The Evaluator of a TFState's model and EMA, on its config, strategy and compilation, with the model
    family's normalization."""
    config = state.config
    return cls(config, source, state.strategy, state.model, state.ema, get_model_spec(config.model.name).normalization,
               compute_dtype, state.jit_compile, counts)

  def _dataset(self):
    return self.strategy.distribute_datasets_from_function(lambda input_context: padded_eval_split(
        self.config, self.source, self.normalization, self.compute_dtype, self.counts, input_context))

  def _counts(self, images, labels, weights):
    """(top-1 hits, top-5 hits, examples) of one replica's batch."""
    return hits(labels, tf.cast(self.model(images, training=False), tf.float32), weights)

  def _make_step(self, jit_compile):
    counts = tf.function(self._counts, jit_compile=jit_compile)

    @tf.function
    def eval_step(iterator):
      results = self.strategy.run(counts, args=next(iterator))
      return [self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None) for value in results]

    return eval_step

  def _next_counts(self, iterator):
    with explained_data_errors(self.source):
      return tuple(float(value) for value in self._step(iterator))

  def evaluate(self, step, use_ema=True):
    """{"step", "top1", "top5", "examples", "ema"} of one pass over the eval split."""
    iterator = iter(self._dataset())
    totals = [0.0, 0.0, 0.0]

    def run():
      while True:
        top1, top5, examples = self._next_counts(iterator)
        if examples == 0:  # only padding left on every replica
          break
        totals[0] += top1
        totals[1] += top5
        totals[2] += examples

    if use_ema:
      with self.ema.averaged_weights():
        run()
    else:
      run()
    return eval_result(step, totals, self.source, use_ema)
