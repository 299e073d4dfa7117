"""The JAX engine's answers (engines.spec.EngineSpec): Keras 3 on JAX, every device JAX finds, on one host or
several."""

import importlib.util


class JaxSpec:
  name = "jax"
  keras_backend = "jax"
  summary = 'Keras 3 on JAX, every device JAX finds (pip install -e ".[jax]")'

  def check_flags(self, launch):
    if launch.tpu or launch.strategy != "auto":
      raise ValueError("--use_tpu, --tpu and --strategy choose TensorFlow's devices; --engine=jax trains on every "
                       "device JAX finds (a TPU VM's included): drop them.")
    from effnetv2_tf.engines.jax.processes import check_launch
    check_launch(launch.coordinator_address, launch.num_processes, launch.process_id)
    if importlib.util.find_spec("jax") is None:
      raise ValueError('--engine=jax needs JAX: pip install -e ".[jax]"')

  def join(self, launch):
    from effnetv2_tf.engines.jax.processes import join
    count = join(launch.coordinator_address, launch.num_processes, launch.process_id, launch.join_seconds)
    import jax
    return jax.process_index(), count

  def runtime(self, launch):
    from effnetv2_tf.engines.jax.runtime import jax_runtime
    return jax_runtime()

  def engine_class(self):
    from effnetv2_tf.engines.jax.engine import JaxEngine
    return JaxEngine

  def owns(self, checkpoint):
    from effnetv2_tf.checkpoints import orbax_steps
    return orbax_steps.owns(checkpoint)

  def chief_first(self, work):
    from effnetv2_tf.engines.jax.processes import process_zero_first
    return process_zero_first(work)  # the processes of a run share its folder

  def notes(self, runtime):
    if runtime.platform != "cpu":
      return []
    return ["note: on the CPU the JAX engine trains 3-6x slower than --engine=tf (XLA's CPU convolutions, "
            "benchmarks/engines.py); it is built for TPUs and GPUs"]

  def check_setup(self, report, launch):
    from effnetv2_tf.engines.jax import doctor
    return doctor.check_setup(report)

  def check_devices(self, report, launch):
    from effnetv2_tf.engines.jax import doctor
    return doctor.check_devices(report)


SPEC = JaxSpec()
