import pytest

import hparams


def test_every_named_set_resolves_to_a_buildable_config():
  for name in hparams.SETS:
    config = hparams.get_config(name)
    if name.startswith("photos-ft-"):  # your photos: the counts are yours to give
      with pytest.raises(ValueError, match="Set model.num_classes and data.num_train_examples for your data"):
        hparams.resolve(config)
      config = hparams.override(config, "model.num_classes=5,data.num_train_examples=300")
    config = hparams.resolve(config)
    assert config.train.image_size and config.eval.image_size and config.model.dropout_rate is not None


def test_resolve_fills_the_model_recipe():
  config = hparams.resolve(hparams.get_config("imagenet-l"))
  assert (config.train.image_size, config.eval.image_size, config.model.dropout_rate) == (384, 480, 0.4)
  assert (config.train.randaug_max, config.train.mixup_max, config.data.augment) == (20, 0.5, "randaug")
  b0 = hparams.resolve(hparams.get_config("imagenet-b0"))
  assert b0.data.augment == "autoaug" and b0.train.image_size == 192


def test_override_parses_values_and_lists():
  config = hparams.override(hparams.get_config("demo"),
                            "train.batch_size=64, data.augment=autoaug,train.lr_base=1e-3,model.width=none")
  assert (config.train.batch_size, config.data.augment, config.train.lr_base, config.model.width) == (
      64, "autoaug", 1e-3, None)


@pytest.mark.parametrize("hparam_str, message", [
    ("train.batchsize=3", r"Unknown hparam 'train.batchsize'. Valid keys: .*train.batch_size"),
    ("train.batch_size=abc", r"'train.batch_size' takes a int \(now 4096\), got 'abc'"),
    ("train.stages=2.5", r"'train.stages' takes a int"),
    ("model=3", r"Unknown hparam 'model'"),
    ("train.epochs", "expected key=value"),
])
def test_bad_overrides_are_one_clear_error(hparam_str, message):
  with pytest.raises(ValueError, match=message):
    hparams.override(hparams.get_config("base"), hparam_str)


def test_unknown_set_lists_the_valid_ones():
  with pytest.raises(ValueError, match="Unknown hparams set 'imagenet-xs'. Valid sets: .*imagenet-s.*cifar10-ft"):
    hparams.get_config("imagenet-xs")


@pytest.mark.parametrize("hparam_str, message", [
    ("train.batch_size=true", r"'train.batch_size' takes a int \(now 32\), got 'true'"),
    ("train.batch_size=0", r"'train.batch_size' must be at least 1, got 0"),
    ("train.batch_size=-4", r"'train.batch_size' must be at least 1, got -4"),
    ("runtime.checkpoint_steps=0", r"'runtime.checkpoint_steps' must be at least 1, got 0"),
    ("eval.image_size=0", r"'eval.image_size' must be at least 1"),
    ("train.epochs=-1.0", r"'train.epochs' must be positive"),
    ("data.augment=randaugment", r"'data.augment' is 'randaugment'; expected one of randaug, autoaug, none"),
    ("runtime.mixed_precision=bf16", r"'runtime.mixed_precision' is 'bf16'; expected one of auto, bfloat16"),
])
def test_values_no_run_can_use_are_refused_before_anything_is_built(hparam_str, message):
  with pytest.raises(ValueError, match=message):
    hparams.resolve(hparams.override(hparams.get_config("demo"), hparam_str))
