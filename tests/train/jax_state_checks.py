"""The JAX side of test_jax_state, in a process of its own (KERAS_BACKEND must be set before Keras loads; the test
process runs Keras on TensorFlow).

  XLA_FLAGS=--xla_force_host_platform_device_count=8 python -m tests.train.jax_state_checks FOLDER HPARAM_STR
Prints one JSON object: "refused", what was refused (a state whose eval batch is 10, not a multiple of the devices;
the Orbax checkpoint of HPARAM_STR's state, saved into FOLDER, restored into the same model with 3 classes; the
plan below on a host too small); and "memory", {batch per replica: bytes a device needs} for the first stage's step
compiled at 8, 16 and 24 images a replica (JaxState.step_memory); "planned", the batch the plan's engine times a
run of 256 images a step at, and its largest batch a replica, on a host whose memory holds 4.5 images a device of
the final stage's step (by the line through its memory at 8 and 16; refused in "refused" on one that holds half the
step's fixed part), then "host", this CPU's JaxRuntime.memory_size (a device's part of half the host's available
memory).
"""

import dataclasses
import json
import os
import sys

os.environ["KERAS_BACKEND"] = "jax"


def main(folder, hparam_str):
  import jax

  from effnetv2_tf import hparams
  from effnetv2_tf.checkpoints.orbax_steps import step_manager
  from effnetv2_tf.engines.jax.engine import JaxEngine
  from effnetv2_tf.engines.jax.runtime import JaxRuntime
  from effnetv2_tf.engines.jax.state import JaxState
  from effnetv2_tf.train.plan import MEMORY_SHARE, planning_engine
  from effnetv2_tf.train.engine import CheckpointMismatchError
  from effnetv2_tf.train.schedule import run_plan

  def config_of(*changes):
    return hparams.resolve(hparams.override(hparams.get_config("demo"), ",".join((hparam_str, *changes))))

  def state(*changes):
    config = config_of(*changes)
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
  config = config_of("train.batch_size=256", "data.num_train_examples=2048")
  final = run_plan(config)[1].stages[-1]
  low, high = (ours.step_memory(final.dropout_rate, final.image_size, count * devices, "float32") for count in (8, 16))
  image = (high - low) / 8

  @dataclasses.dataclass(frozen=True)
  class GivenHost(JaxRuntime):  # a CPU whose devices' steps may take `memory` bytes each
    memory: float = 0.0

    def memory_size(self):
      return self.memory

  holding = (low + (4.5 - 8) * image) / MEMORY_SHARE
  timer, timed, largest = planning_engine(JaxEngine, config, GivenHost("cpu", holding), final)
  planned = {"timed": timed.train.batch_size, "replicas": timer.replicas, "per_replica": largest.per_replica}
  try:
    planning_engine(JaxEngine, config, GivenHost("cpu", (low - 8 * image) / 2), final)  # half the fixed part
  except ValueError as error:
    refused.append(str(error))
  print(json.dumps({"refused": refused, "memory": memory, "planned": planned, "host": JaxRuntime("cpu").memory_size()}))


if __name__ == "__main__":
  main(*sys.argv[1:])
