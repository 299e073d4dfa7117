"""The doctor's checks of the TensorFlow engine (python main.py --doctor): the TPU runtime's variables, and the
devices and the tf.distribute strategy the flags name. `report` is the doctor's Report."""

import os
import time

from effnetv2_tf.tpu import pjrt


def check_setup(report, tpu, environ=os.environ):
  """Prepares the TPU runtime variables for `tpu` (as main.py does) and lists those set."""
  try:
    for line in pjrt.prepare_environment(tpu, environ):
      report.info("tpu", line)
  except pjrt.TPUSetupError as error:  # its message says what to do
    report.problem("tpu", str(error), "tpu/README.md")
    return False
  variables = {name: environ[name] for name in pjrt.PJRT_VARIABLES if name in environ}
  report.info("runtime env", ", ".join(f"{k}={v}" for k, v in variables.items()) or "none set")
  return True


def check_devices(report, strategy_name, tpu, zone, project):
  """Imports TensorFlow, lists the devices, connects the strategy; returns the Runtime or None."""
  started = time.perf_counter()
  from effnetv2_tf.quiet_start import import_tensorflow
  tf = import_tensorflow()  # without TensorFlow's start-up banner, which says nothing about the machine's readiness
  from effnetv2_tf.tpu.strategy import TPUUnreachableError, resolve_runtime
  report.info("import", f"tensorflow {tf.__version__} in {time.perf_counter() - started:.1f} s")
  devices = {}
  for device in tf.config.list_logical_devices():
    devices[device.device_type] = devices.get(device.device_type, 0) + 1
  report.info("devices", ", ".join(f"{count} {kind}" for kind, count in devices.items()))
  try:
    runtime = resolve_runtime(strategy_name, tpu, zone, project)
  except (TPUUnreachableError, ValueError, RuntimeError) as error:
    report.problem("strategy", str(error).split(". ")[0], "see tpu/README.md (--tpu=local on a TPU VM)")
    return None
  strategy_name = type(runtime.strategy).__name__.strip("_")
  text = f"{strategy_name}, {runtime.strategy.num_replicas_in_sync} replica(s), {runtime.platform}"
  if runtime.topology is not None:
    topology = runtime.topology
    text += (f"; TPU topology: mesh {list(topology.mesh_shape)}, {topology.num_tasks} host(s), "
             f"{topology.num_tpus_per_task} chip(s) per host")
  elif runtime.platform != "tpu":
    text += "; no TPU"
  report.info("strategy", text)
  return runtime
