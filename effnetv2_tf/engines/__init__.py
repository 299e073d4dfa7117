"""The engines that train a run, by name: one look-up gives everything engine-specific.

  tf    TensorFlow: tf.distribute on TPUs (v4, v5e, v5p), GPUs and the CPU        engines/tf/
  jax   Keras 3 on JAX: every device JAX finds, on one host or several          engines/jax/

`get(name)` is the engine's EngineSpec (spec.py): the Keras backend it needs, its flag checks, joining the run's
processes, the runtime, the Engine class the stage loop drives (train.engine), its doctor checks, the checkpoints
it resumes and who writes the run folder first. main.py, the jobs, the doctor and the benchmarks look an engine up
once and never test its name. A third engine is a package beside these two, its SPEC listed below; the contract
test (tests/test_engines.py) says what it must have. Importing this loads neither TensorFlow nor JAX.
"""

from effnetv2_tf.engines.jax.spec import SPEC as JAX
from effnetv2_tf.engines.spec import EngineSpec, Launch
from effnetv2_tf.engines.tf.spec import SPEC as TF

ENGINES = {spec.name: spec for spec in (TF, JAX)}
NAMES = tuple(ENGINES)

__all__ = ["ENGINES", "NAMES", "EngineSpec", "Launch", "get", "writer_of"]


def get(name):
  """The EngineSpec called `name`; an unknown name raises ValueError listing the others."""
  try:
    return ENGINES[name]
  except KeyError:
    raise ValueError(f"Unknown engine {name!r}: expected one of {', '.join(NAMES)}.") from None


def writer_of(checkpoint):
  """The EngineSpec whose checkpoints `checkpoint` (a path) is one of, or None."""
  return next((spec for spec in ENGINES.values() if spec.owns(checkpoint)), None)
