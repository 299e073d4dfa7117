"""The devices JAX found, and the per-platform choices: the JAX engine's counterpart of tpu.strategy.Runtime."""

import dataclasses

import jax

POLICIES = {"bfloat16": "mixed_bfloat16", "float32": "float32"}


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
    """The first local device's memory in bytes that its allocator may hand out (None on the CPU, whose memory
    is the host's, or where it reports none)."""
    if self.platform == "cpu":
      return None
    return (jax.local_devices()[0].memory_stats() or {}).get("bytes_limit")


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
