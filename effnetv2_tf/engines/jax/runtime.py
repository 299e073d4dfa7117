"""The devices JAX found, and the per-platform choices: the JAX engine's counterpart of tpu.strategy.Runtime."""

import dataclasses

import jax

POLICIES = {"bfloat16": "mixed_bfloat16", "float32": "float32"}
# The share of the host's available memory a CPU's devices give their steps: the process grows beyond XLA's memory
# analysis of a step there (the CPU's convolution scratch, the runtimes): V2-S on 8 virtual devices peaked at 15.6
# GiB resident for 16 images a step analysed at 8.7 GiB, and at 22.7 GiB for 32 analysed at 13.0 (2026-12-07).
CPU_STEP_SHARE = 0.5


@dataclasses.dataclass(frozen=True)
class JaxRuntime:
  platform: str  # "tpu", "gpu" or "cpu"

  def mixed_precision_policy(self, setting="auto"):
    """The Keras dtype policy: "auto" picks bfloat16 on TPU and GPU (no loss scaling needed), float32 on CPU."""
    if setting == "auto":
      return "float32" if self.platform == "cpu" else "mixed_bfloat16"
    if setting == "float16":
      raise ValueError("runtime.mixed_precision float16 needs loss scaling, which the JAX engine does not do: use "
                       "bfloat16 (or float32).")
    if setting not in POLICIES:
      raise ValueError(f"Unknown mixed_precision {setting!r}; expected auto, bfloat16 or float32.")
    return POLICIES[setting]

  def jit_compile(self, setting="auto"):
    """XLA: jax.jit compiles every step; "false" cannot be had."""
    key = str(setting).lower()
    if key == "false":
      raise ValueError("runtime.jit_compile false: the JAX engine always compiles its step (jax.jit): drop it, or "
                       "train with --engine=tf.")
    if key not in ("auto", "true"):
      raise ValueError(f"runtime.jit_compile must be auto, true or false, got {setting!r}.")
    return True

  def peak_memory(self):
    """The first local device's peak memory in bytes, as its allocator reports it (None on the CPU, or where it
    reports none)."""
    if self.platform == "cpu":
      return None
    return (jax.local_devices()[0].memory_stats() or {}).get("peak_bytes_in_use")

  def memory_size(self):
    """The bytes a device's allocator may hand out: the first local device's own, or on the CPU a local device's
    part of CPU_STEP_SHARE of the host's available memory (its devices all take theirs from it); None where it is
    not known."""
    if self.platform == "cpu":
      available = host_available_bytes()
      return int(available * CPU_STEP_SHARE) // jax.local_device_count() if available else None
    return (jax.local_devices()[0].memory_stats() or {}).get("bytes_limit")


def host_available_bytes(meminfo="/proc/meminfo"):
  """The memory the host can still give without swapping (Linux's MemAvailable), in bytes; None elsewhere."""
  try:
    with open(meminfo) as lines:
      for line in lines:
        if line.startswith("MemAvailable:"):
          return int(line.split()[1]) * 1024  # kB
  except OSError:
    pass
  return None


def compiled_bytes(compiled):
  """Bytes a device needs for a compiled program, by XLA's memory analysis (nothing is run): its arguments,
  temporaries, and outputs that do not reuse an argument's buffer; None where the backend gives no analysis."""
  analysis = compiled.memory_analysis()
  if analysis is None:
    return None
  return (analysis.argument_size_in_bytes + analysis.temp_size_in_bytes + analysis.output_size_in_bytes
          - analysis.alias_size_in_bytes)


def jax_runtime():
  return JaxRuntime(jax.default_backend())
