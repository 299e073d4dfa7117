import pytest
import tensorflow as tf

from tpu.strategy import Runtime, resolve_runtime


def test_platform_choices():
  strategy = tf.distribute.get_strategy()
  assert Runtime(strategy, "tpu").mixed_precision_policy() == "mixed_bfloat16"
  assert Runtime(strategy, "gpu").mixed_precision_policy() == "mixed_float16"
  assert Runtime(strategy, "cpu").mixed_precision_policy() == "float32"
  assert Runtime(strategy, "cpu").mixed_precision_policy("bfloat16") == "mixed_bfloat16"
  assert [Runtime(strategy, p).jit_compile() for p in ("tpu", "gpu", "cpu")] == [True, True, False]
  with pytest.raises(ValueError, match="Unknown mixed_precision 'fp8'"):
    Runtime(strategy, "cpu").mixed_precision_policy("fp8")


def test_default_and_bad_strategy(monkeypatch):
  monkeypatch.delenv("TF_CONFIG", raising=False)
  runtime = resolve_runtime("auto")
  assert runtime.platform == "cpu" and runtime.strategy.num_replicas_in_sync == 1
  with pytest.raises(ValueError, match="Unknown strategy 'gpus'"):
    resolve_runtime("gpus")
