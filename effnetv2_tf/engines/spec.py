"""What the command line, the jobs, the doctor and the benchmarks ask of an engine by its name (EngineSpec), and the
flags they hand it (Launch). The stage loop's side of an engine, the one that trains, is train.engine.Engine.

An engine's answers import its framework only when asked: the registry itself loads neither TensorFlow nor JAX.
"""

import dataclasses
import typing


@dataclasses.dataclass(frozen=True)
class Launch:
  """Where this process runs, as main.py's flags say: the devices and the processes of the run."""
  tpu: str | None = None  # a TPU's name or grpc:// address; "local" on a TPU VM (--tpu, --use_tpu)
  zone: str | None = None
  project: str | None = None
  strategy: str = "auto"  # the tf.distribute strategy (--strategy)
  coordinator_address: str | None = None  # HOST:PORT of process 0 of a run on several processes
  num_processes: int | None = None
  process_id: int | None = None
  join_seconds: float = 60.0  # how long a process waits for the others to start


@typing.runtime_checkable
class EngineSpec(typing.Protocol):
  """One engine, as the registry (engines.get) gives it.

  Attributes:
    name: the --engine value (and runtime.engine in a run's config.yaml).
    keras_backend: the KERAS_BACKEND its training needs, set before Keras loads.
    summary: what trains, in words (--engine's help).
  """

  name: str
  keras_backend: str
  summary: str

  def check_flags(self, launch) -> None:
    """Raises ValueError naming the flags of `launch` this engine does not take, or what it needs installed."""

  def join(self, launch) -> tuple:
    """Joins this process to the run's others (before the framework touches a device); returns (this process's
    index, the process count): (0, 1) for a run of one process."""

  def runtime(self, launch) -> typing.Any:
    """The devices to run on, and the per-platform choices: mixed_precision_policy(setting),
    jit_compile(setting), peak_memory() (bytes, or None) and `platform` ("tpu", "gpu" or "cpu")."""

  def engine_class(self) -> type:
    """The train.engine.Engine that trains a run: `(config, runtime, eval_source=None, counts=None)`."""

  def owns(self, checkpoint) -> bool:
    """Whether `checkpoint` (a path) is in this engine's format, one it resumes."""

  def chief_first(self, work) -> typing.Any:
    """work()'s result, with the process that writes the run folder's files doing it before the others do (the
    demo's records, which they then find)."""

  def notes(self, runtime) -> list:
    """Lines a run on `runtime` prints before it trains (e.g. the engine is slow there)."""

  def check_setup(self, report, launch) -> bool:
    """The doctor: what this engine needs installed and set before its framework starts; whether it can start."""

  def check_devices(self, report, launch) -> typing.Any:
    """The doctor: starts the framework, reports its devices; returns the runtime, or None after a problem."""
