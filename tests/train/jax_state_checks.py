"""The JAX side of test_jax_state, in a process of its own (KERAS_BACKEND must be set before Keras loads; the test
process runs Keras on TensorFlow).

  XLA_FLAGS=--xla_force_host_platform_device_count=8 python -m tests.train.jax_state_checks FOLDER HPARAM_STR
Prints one JSON object: "refused", what was refused (a state whose eval batch is 10, not a multiple of the devices;
the Orbax checkpoint of HPARAM_STR's state, saved into FOLDER, restored into the same model with 3 classes); and
"memory", {batch per replica: bytes a device needs} for the first stage's step compiled at 8, 16 and 24 images a
replica (JaxState.step_memory).
"""

import json
import os
import sys

os.environ["KERAS_BACKEND"] = "jax"


def main(folder, hparam_str):
  import jax

  from effnetv2_tf import hparams
  from effnetv2_tf.checkpoints.orbax_steps import step_manager
  from effnetv2_tf.engines.jax.state import JaxState
  from effnetv2_tf.train.engine import CheckpointMismatchError
  from effnetv2_tf.train.schedule import run_plan

  def state(*changes):
    config = hparams.resolve(hparams.override(hparams.get_config("demo"), ",".join((hparam_str, *changes))))
    steps_per_epoch, schedule = run_plan(config)
    return JaxState(config, schedule.total_steps, steps_per_epoch), schedule.stages[0]

  refused = []
  try:
    state("eval.batch_size=10")
  except ValueError as error:
    refused.append(str(error))
  manager = step_manager(folder)
  ours, stage = state()
  saved = ours.save(manager)
  manager.wait_until_finished()
  try:
    state("model.num_classes=3")[0].restore(saved)
  except CheckpointMismatchError as error:
    refused.append(str(error))
  devices = jax.device_count()
  memory = {count: ours.step_memory(stage.dropout_rate, stage.image_size, count * devices, "float32")
            for count in (8, 16, 24)}
  print(json.dumps({"refused": refused, "memory": memory}))


if __name__ == "__main__":
  main(*sys.argv[1:])
