import pytest
import tensorflow as tf

from effnetv2_tf.tpu.strategy import Runtime, resolve_runtime


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


@pytest.mark.parametrize("text, platform, expected", [("true", "cpu", True), ("false", "tpu", False),
                                                      ("auto", "cpu", False), ("auto", "gpu", True),
                                                      ("True", "cpu", True)])
def test_jit_compile_takes_true_false_auto_from_hparam_str(text, platform, expected):
  from effnetv2_tf import hparams
  config = hparams.override(hparams.get_config("demo"), f"runtime.jit_compile={text}")
  assert Runtime(tf.distribute.get_strategy(), platform).jit_compile(config.runtime.jit_compile) is expected
  with pytest.raises(ValueError, match="runtime.jit_compile must be auto, true or false, got 'maybe'"):
    Runtime(tf.distribute.get_strategy(), platform).jit_compile("maybe")


def test_jit_compile_from_a_written_config_yaml(tmp_path):
  import yaml
  from effnetv2_tf import hparams
  config = hparams.override(hparams.get_config("demo"), "runtime.jit_compile=true")
  (tmp_path / "config.yaml").write_text(yaml.safe_dump(config.to_dict()))
  saved = yaml.safe_load((tmp_path / "config.yaml").read_text())["runtime"]["jit_compile"]
  assert Runtime(tf.distribute.get_strategy(), "cpu").jit_compile(saved) is True
