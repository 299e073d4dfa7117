"""The TensorFlow engine's answers (engines.spec.EngineSpec): tf.distribute on TPUs, GPUs and the CPU."""


class TFSpec:
  name = "tf"
  keras_backend = "tensorflow"
  summary = "TensorFlow, on the tf.distribute strategy --strategy and --tpu choose"

  def check_flags(self, launch):
    if launch.coordinator_address or launch.num_processes or launch.process_id is not None:
      raise ValueError("--coordinator_address, --num_processes and --process_id start the processes of an "
                       "--engine=jax run; TensorFlow's workers read TF_CONFIG (--strategy=multi_worker).")

  def join(self, launch):
    return 0, 1  # MultiWorkerMirroredStrategy's workers find each other through TF_CONFIG when it is built

  def runtime(self, launch):
    from effnetv2_tf.tpu.strategy import resolve_runtime
    return resolve_runtime(launch.strategy, launch.tpu, launch.zone, launch.project)

  def engine_class(self):
    from effnetv2_tf.engines.tf.engine import TFEngine
    return TFEngine

  def owns(self, checkpoint):
    from effnetv2_tf.checkpoints import tf_prefixes
    return tf_prefixes.owns(checkpoint)

  def chief_first(self, work):
    return work()  # each process does it: TF's workers share no collective before their strategy is built

  def notes(self, runtime):
    return []

  def check_setup(self, report, launch):
    from effnetv2_tf.engines.tf import doctor
    return doctor.check_setup(report, launch.tpu)

  def check_devices(self, report, launch):
    from effnetv2_tf.engines.tf import doctor
    return doctor.check_devices(report, launch.strategy, launch.tpu, launch.zone, launch.project)


SPEC = TFSpec()
