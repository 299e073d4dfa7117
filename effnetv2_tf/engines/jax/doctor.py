"""The doctor's checks of the JAX engine (python main.py --engine=jax --doctor): JAX, jaxlib and Orbax beside the
TensorFlow build that feeds them, and the devices JAX finds. `report` is the doctor's Report."""

import importlib.metadata
import time


def _version(distribution):
  try:
    return importlib.metadata.version(distribution)
  except importlib.metadata.PackageNotFoundError:
    return None


def check_setup(report):
  """JAX, jaxlib and Orbax beside the TensorFlow build that feeds them, read without importing them."""
  versions = {name: _version(name) for name in ("jax", "jaxlib", "orbax-checkpoint")}
  missing = [name for name, version in versions.items() if version is None]
  if missing:
    report.problem("jax", f"{', '.join(missing)} not installed", 'pip install -e ".[jax]" (".[jax-cuda]", ".[jax-tpu]")')
    return False
  report.info("jax", ", ".join(f"{name} {version}" for name, version in versions.items()))
  if _version("tensorflow-tpu"):
    report.problem("tensorflow", "tensorflow-tpu beside jax: both load libtpu, and break each other",
                   'pip uninstall -y tensorflow-tpu libtpu, then pip install -e ".[jax-tpu]" (tensorflow-cpu)')
    return False
  return True


def check_devices(report):
  """Imports JAX and lists its devices; returns the JaxRuntime."""
  started = time.perf_counter()
  from effnetv2_tf.quiet_start import import_tensorflow
  import_tensorflow()
  import jax
  from effnetv2_tf.engines.jax.runtime import jax_runtime
  report.info("import", f"jax {jax.__version__} and tensorflow (input) in {time.perf_counter() - started:.1f} s")
  local = jax.local_devices()
  report.info("devices", f"{len(local)} {local[0].device_kind} ({jax.default_backend()}) in process "
              f"{jax.process_index()} of {jax.process_count()}; each batch split over a mesh of {jax.device_count()}")
  return jax_runtime()
