"""Resolves the tf.distribute strategy from flags and makes the per-platform choices once.

  tpu:          TPUClusterResolver(name | "local" on a TPU VM, zone, project), connect, initialize.
  multi_worker: MultiWorkerMirroredStrategy from TF_CONFIG (GPU hosts; one process per host).
  mirrored:     MirroredStrategy over the local GPUs (or, in tests, over logical CPU devices).
  default:      tf.distribute's default strategy (one CPU or GPU).
Mixed precision and XLA follow the platform: bfloat16 + XLA on TPU, float16 + XLA on GPU, neither on
CPU (XLA was measured 4-5x slower than oneDNN graphs for EfficientNetV2 there).
"""

import dataclasses
import json
import os

import tensorflow as tf

from effnetv2_tf.tpu import pjrt
from effnetv2_tf.tpu.pjrt import TPUUnreachableError

STRATEGIES = ("auto", "tpu", "multi_worker", "mirrored", "default")


@dataclasses.dataclass(frozen=True)
class Runtime:
  strategy: tf.distribute.Strategy
  platform: str  # "tpu", "gpu" or "cpu"
  topology: object = None  # the TPU's tf.tpu.experimental.Topology

  def mixed_precision_policy(self, setting="auto"):
    """The Keras dtype policy: "auto" picks bfloat16 on TPU, float16 on GPU, float32 on CPU."""
    if setting == "auto":
      return {"tpu": "mixed_bfloat16", "gpu": "mixed_float16"}.get(self.platform, "float32")
    policies = {"bfloat16": "mixed_bfloat16", "float16": "mixed_float16", "float32": "float32"}
    if setting not in policies:
      raise ValueError(f"Unknown mixed_precision {setting!r}; expected auto, bfloat16, float16 or float32.")
    return policies[setting]

  def jit_compile(self, setting="auto"):
    """XLA: "auto" compiles on TPU and GPU, not on the CPU; "true"/"false" (or a bool) force it."""
    choices = {"auto": self.platform in ("tpu", "gpu"), "true": True, "false": False}
    key = str(setting).lower()
    if key not in choices:
      raise ValueError(f"runtime.jit_compile must be auto, true or false, got {setting!r}.")
    return choices[key]

  def peak_memory(self):
    """The first accelerator's peak memory in bytes, as TensorFlow reports it (None on the CPU, or where it reports
    none)."""
    if self.platform == "cpu":
      return None
    try:
      return tf.config.experimental.get_memory_info(f"{self.platform.upper()}:0")["peak"]
    except (ValueError, tf.errors.OpError):
      return None


def _connect_tpu(tpu, zone, project):
  """TPUStrategy and topology; a grpc address must accept a connection first (TF would wait forever)."""
  try:
    if pjrt.is_grpc_address(tpu):
      pjrt.check_reachable(tpu)
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu, zone=zone, project=project)
    if tpu not in (None, "", "local"):
      tf.config.experimental_connect_to_cluster(resolver)
    topology = tf.tpu.experimental.initialize_tpu_system(resolver)
  except pjrt.TPUSetupError as error:
    raise TPUUnreachableError(str(error)) from None
  except (ValueError, tf.errors.NotFoundError, tf.errors.UnavailableError, RuntimeError) as error:
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    raise TPUUnreachableError(
        f"No TPU reachable at tpu={tpu!r} (zone={zone!r}, project={project!r}): {first_line}. On a TPU VM use "
        "--tpu=local; elsewhere pass the TPU's name with --zone and --project.") from None
  return tf.distribute.TPUStrategy(resolver), topology


def resolve_runtime(strategy="auto", tpu=None, zone=None, project=None):
  """The strategy and platform to train on.

  Args:
    strategy: one of STRATEGIES; "auto" is tpu when `tpu` is given, multi_worker when TF_CONFIG names
      several workers, mirrored with more than one GPU, else default.
    tpu, zone, project: the TPU to connect to ("local" on a TPU VM).

  Raises:
    TPUUnreachableError: a TPU was asked for and none answered.
    ValueError: an unknown strategy name.
  """
  if strategy not in STRATEGIES:
    raise ValueError(f"Unknown strategy {strategy!r}; expected one of {STRATEGIES}.")
  gpus = tf.config.list_physical_devices("GPU")
  if strategy == "auto":
    workers = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {}).get("worker", [])
    strategy = ("tpu" if tpu else "multi_worker" if len(workers) > 1 else "mirrored" if len(gpus) > 1
                else "default")
  if strategy == "tpu":
    strategy, topology = _connect_tpu(tpu or "local", zone, project)
    return Runtime(strategy, "tpu", topology)
  platform = "gpu" if gpus else "cpu"
  if strategy == "multi_worker":
    return Runtime(tf.distribute.MultiWorkerMirroredStrategy(), platform)
  if strategy == "mirrored":
    devices = None if gpus else [d.name for d in tf.config.list_logical_devices("CPU")]
    return Runtime(tf.distribute.MirroredStrategy(devices), platform)
  return Runtime(tf.distribute.get_strategy(), platform)
