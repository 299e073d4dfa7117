"""The JAX side of test_jax_state: JaxState trains steps from given weights on given batches, in its own process
(KERAS_BACKEND must be set before Keras loads; the test process runs Keras on TensorFlow).

  python -m tests.train.jax_steps IN.npz OUT.npz HPARAM_STR [EVAL_DATA_DIR]
IN holds the initial weights (weight_0...) and the batches (images, labels: [steps, batch, ...]); OUT gets each
step's (loss, top-1), the weights (weight_i) and the EMA's shadows (shadow_i) after the last step, what restoring
the Orbax checkpoint saved before that step into a 3-class model said ("refused"; that a resume from such a
checkpoint ends bit for bit where the run ends is test_jax_processes'), and the number of devices the batches were
split over (XLA_FLAGS=--xla_force_host_platform_device_count=N makes N on the CPU);
with EVAL_DATA_DIR, the (top-1 hits, top-5 hits, examples) of the EMA weights on its eval split ("eval"); then
the RNG states after each of 2 steps with dropout 0.5 ("rng_states").
"""

import os
import sys

os.environ["KERAS_BACKEND"] = "jax"


def main(source, target, hparam_str, eval_data_dir=None):
  import jax
  import numpy as np

  from effnetv2_tf import hparams
  from effnetv2_tf.checkpoints.orbax_steps import step_manager
  from effnetv2_tf.engines.jax.state import JaxState
  from effnetv2_tf.train.schedule import run_plan
  config = hparams.resolve(hparams.override(hparams.get_config("demo"), hparam_str))
  steps_per_epoch, schedule = run_plan(config)
  state = JaxState(config, schedule.total_steps, steps_per_epoch)
  given = np.load(source)
  state.set_model_weights([given[f"weight_{i}"] for i in range(len(state.model.weights))])
  loop = state.train_loop(schedule.stages[0].dropout_rate)
  batches = zip(given["images"], given["labels"])
  results = [loop(batches, 1) for _ in range(len(given["images"]) - 1)]
  saved = state.save(step_manager(os.path.join(os.path.dirname(target), "checkpoints")))
  results.append(loop(batches, 1))
  from effnetv2_tf.train.engine import CheckpointMismatchError
  other = hparams.resolve(hparams.override(config, "model.num_classes=3"))
  try:
    JaxState(other, schedule.total_steps, steps_per_epoch).restore(saved)
    refused = ""
  except CheckpointMismatchError as error:
    refused = str(error)
  evaluated = {}
  if eval_data_dir:
    from effnetv2_tf.data.pipeline import Preprocessing, eval_dataset
    from effnetv2_tf.model import get_model_spec
    from effnetv2_tf.train.run_data import eval_source
    preprocessing = Preprocessing(config.eval.image_size, get_model_spec(config.model.name).normalization)
    dataset = eval_dataset(eval_source(config, eval_data_dir), preprocessing, batch_size=config.eval.batch_size,
                           num_classes=config.model.num_classes, padded=True)
    evaluated["eval"] = state.evaluate(dataset.as_numpy_iterator())
  # Then 2 steps with dropout: the RNG states (among the non-trainable arrays) after each, as the step returns them.
  weights, shadows = state.model_weights(), [np.asarray(shadow) for shadow in state.arrays["shadows"]]
  seeds = [i for i, v in enumerate(state.model.non_trainable_variables) if v.path.endswith("seed_generator_state")]
  dropout = state.train_loop(0.5)
  rng_states = [np.stack([np.asarray(state.arrays["non_trainable"][i]) for i in seeds])]
  for images, labels in zip(given["images"][:2], given["labels"][:2]):
    dropout(iter([(images, labels)]), 1)
    rng_states.append(np.stack([np.asarray(state.arrays["non_trainable"][i]) for i in seeds]))
  np.savez(target, results=np.array(results), devices=len(jax.local_devices()), rng_states=np.array(rng_states),
           refused=refused,
           **evaluated, **{f"weight_{i}": w for i, w in enumerate(weights)},
           **{f"shadow_{i}": shadow for i, shadow in enumerate(shadows)})


if __name__ == "__main__":
  main(*sys.argv[1:])
