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
