import pytest

from effnetv2_tf import hparams


def test_every_named_set_resolves_to_a_buildable_config():
  for name in hparams.SETS:
    config = hparams.get_config(name)
    if name.startswith("photos-"):  # your photos: the counts come from the data, or are yours to give
      with pytest.raises(ValueError, match="Set model.num_classes and data.num_train_examples for your data"):
        hparams.resolve(config)
      config = hparams.override(config, "model.num_classes=5,data.num_train_examples=300")
    config = hparams.resolve(config)
    assert config.progressive.image_size_max and config.eval.image_size
    assert config.regularization.dropout_max is not None


def _photos(overrides=""):
  config = hparams.override(hparams.get_config("photos-b0"), "model.num_classes=5,data.num_train_examples=3200")
  return hparams.resolve(hparams.override(config, overrides))


def test_the_photos_recipe_is_sized_by_the_run():
  config = _photos()  # 30 epochs of 3,200 images at batch 32: 3,000 steps
  assert (config.progressive.stages, config.progressive.image_size_min, config.progressive.image_size_max) == (
      3, 96, 192)
  assert config.augment.policy == "randaug"
  assert config.model.zero_init_residual and not hparams.get_config("imagenet-b0").model.zero_init_residual
  assert config.regularization.dropout_min == config.regularization.dropout_max == 0.2  # one traced step
  assert config.train.warmup_epochs == 1.5  # a twentieth of the run
  assert config.train.ema_decay == round(1 - 1 / 300, 6)  # a horizon of a tenth of the 3,000 steps
  assert config.train.lr_base * 32 / 256 == pytest.approx(1e-3)  # Adam's usual rate, at batch 32
  assert _photos("train.batch_size=128").train.lr_base * 128 / 256 == pytest.approx(1e-3)  # at any batch
  short = _photos("train.epochs=1.0")  # 100 steps: the horizon stays at least 100 steps
  assert (short.train.warmup_epochs, short.train.ema_decay) == (0.05, 0.99)
  # Under 30 epochs: one stage at 5/6 of the final size, without RandAugment, dropout or stochastic depth,
  # evaluated at the eval size; from 30 on, the stages, with the model's dropout and stochastic depth.
  assert (short.progressive.stages, short.progressive.image_size_max, short.eval.image_size) == (1, 160, 224)
  recipe = hparams.override(hparams.get_config("photos-b0"),
                            "model.num_classes=5,data.num_train_examples=3200,train.epochs=1.0")
  assert hparams.photos.short_run_note(recipe, short) == (  # the data line said 192: a line says why 160
      "progressive.image_size_max 160, not 192: a run of 1 epochs from scratch (under 30) trains one stage at 5/6 of "
      "the size, without RandAugment, dropout or stochastic depth, and evaluates at 224; set progressive.stages to "
      "choose the stages and sizes")
  assert hparams.photos.short_run_note(recipe, config) is None  # 30 epochs: the data's size
  assert short.augment.policy == "none"
  assert (short.regularization.dropout_min, short.regularization.dropout_max, short.regularization.survival_prob) == (
      0.0, 0.0, 1.0)
  assert (config.regularization.survival_prob, _photos("train.epochs=30.0").regularization.survival_prob) == (0.8, 0.8)
  assert (_photos("train.epochs=29.9").progressive.stages, _photos("train.epochs=30.0").progressive.stages) == (1, 3)
  yours = _photos("train.epochs=2.0,progressive.stages=2")  # stages given: stages, augmentation, dropout kept
  assert (yours.progressive.stages, yours.augment.policy, yours.regularization.dropout_max,
          yours.regularization.survival_prob) == (2, "randaug", 0.2, 0.8)
  assert _photos("train.epochs=2.0,regularization.survival_prob=0.9").regularization.survival_prob == 0.9  # given
  assert _photos("train.epochs=3000.0").train.ema_decay == 0.9999
  tuned = _photos("train.ft_init_ckpt=somewhere/,train.epochs=2.0")  # fine-tuning: the final size throughout,
  assert (tuned.progressive.stages, tuned.train.lr_base) == (1, config.train.lr_base / 10)  # a tenth of the lr,
  assert (tuned.augment.policy, tuned.regularization.survival_prob) == ("randaug", 0.8)  # regularized, however short
  given = _photos("train.warmup_epochs=0.0,train.ema_decay=0.9,progressive.stages=2,progressive.image_size_min=64")
  assert (given.train.warmup_epochs, given.train.ema_decay, given.progressive.stages,
          given.progressive.image_size_min) == (0.0, 0.9, 2, 64)  # what is given is kept
  small = _photos("progressive.image_size_max=48,eval.image_size=48")  # photos smaller than 64 px
  assert small.progressive.image_size_min == 48
  # A short run of small photos trains at 5/6 of their size, a multiple of 16, but not below 64 px.
  assert [_photos(f"train.epochs=2.0,progressive.image_size_max={size}").progressive.image_size_max
          for size in (48, 64, 80, 144)] == [48, 64, 64, 112]
  small = hparams.override(recipe, "progressive.image_size_max=64")
  assert hparams.photos.short_run_note(small, hparams.resolve(small)) is None  # kept its size: nothing to explain


def test_a_time_budget_starts_from_a_plan_with_stochastic_depth():
  recipe = hparams.override(hparams.get_config("photos-b0"),
                            "model.num_classes=5,data.num_train_examples=3200,train.epochs=3.0")
  start = hparams.resolve(hparams.photos.budget_start(recipe))  # the model it builds can train any fitted plan
  assert (start.train.epochs, start.regularization.survival_prob) == (30.0, 0.8)
  assert recipe.train.epochs == 3.0  # the recipe itself is left as given
  assert hparams.photos.budget_start(hparams.override(recipe, "train.epochs=40.0")).train.epochs == 40.0


def test_a_negative_time_budget_is_refused():
  with pytest.raises(ValueError, match="train.time_budget' must be 0 .off. or more minutes"):
    _photos("train.time_budget=-5")


def test_resolve_fills_the_model_recipe():
  config = hparams.resolve(hparams.get_config("imagenet-l"))
  assert (config.progressive.image_size_max, config.eval.image_size, config.regularization.dropout_max) == (
      384, 480, 0.4)
  assert (config.augment.magnitude_max, config.mixing.mixup_max, config.augment.policy) == (20, 0.5, "randaug")
  b0 = hparams.resolve(hparams.get_config("imagenet-b0"))
  assert b0.augment.policy == "autoaug" and b0.progressive.image_size_max == 192


def test_override_parses_values_and_lists():
  config = hparams.override(hparams.get_config("demo"),
                            "train.batch_size=64, augment.policy=autoaug,train.lr_base=1e-3,model.width=none")
  assert (config.train.batch_size, config.augment.policy, config.train.lr_base, config.model.width) == (
      64, "autoaug", 1e-3, None)


def test_augment_policy_none_means_no_augmentation_not_the_model_s_recipe():
  b0 = hparams.resolve(hparams.override(hparams.get_config("photos-b0"),
                                        "augment.policy=none,model.num_classes=5,data.num_train_examples=300"))
  assert b0.augment.policy == "none"
  recipe = hparams.resolve(hparams.override(hparams.get_config("imagenet-b0"), "augment.policy=null"))
  assert recipe.augment.policy == "autoaug"  # null: the model's own (B0: AutoAugment)


def test_every_key_has_one_group_and_the_old_names_still_work(capsys):
  config = hparams.get_config("base")
  keys = {f"{group}.{key}" for group in config for key in config[group]}
  assert set(hparams.RENAMED.values()) <= keys and not set(hparams.RENAMED) & keys
  renamed = hparams.override(hparams.get_config("demo"), "train.image_size=96,model.dropout_rate=0.4")
  assert (renamed.progressive.image_size_max, renamed.regularization.dropout_max) == (96, 0.4)
  assert "note: hparam train.image_size is now called progressive.image_size_max" in capsys.readouterr().err
  # A config.yaml written before the renames reads as the new layout, every value in its new place.
  old = {"model": {"name": "efficientnetv2-b0", "dropout_rate": 0.3, "survival_prob": 0.7},
         "data": {"augment": "autoaug", "crop_area_min": 0.2}, "train": {"stages": 2, "image_size": 96,
                                                                        "lr_base": 0.1}}
  assert hparams.upgrade(old) == {
      "model": {"name": "efficientnetv2-b0"}, "data": {}, "train": {"lr_base": 0.1},
      "regularization": {"dropout_max": 0.3, "survival_prob": 0.7}, "augment": {"policy": "autoaug",
                                                                               "crop_area_min": 0.2},
      "progressive": {"stages": 2, "image_size_max": 96}}


def test_keys_a_saved_config_lacks_are_named_and_filled_with_this_version_s_defaults():
  saved = {group: dict(values) for group, values in hparams.get_config("base").to_dict().items()}
  del saved["runtime"]["stop_seconds"], saved["train"]["lr_base"]
  saved["train"]["seed"] = 7
  assert sorted(hparams.missing_keys(saved)) == ["runtime.stop_seconds", "train.lr_base"]
  filled = hparams.with_defaults(saved)
  assert (filled["runtime"]["stop_seconds"], filled["train"]["lr_base"], filled["train"]["seed"]) == (60, 0.016, 7)
  assert hparams.missing_keys(filled) == [] and "lr_base" not in saved["train"]  # a copy


def test_hparams_import_without_tensorflow_or_keras(tmp_path):
  import subprocess
  import sys
  loaded = subprocess.run([sys.executable, "-c", "import sys; from effnetv2_tf import hparams; "
                           "hparams.resolve(hparams.get_config('imagenet-s')); "
                           "print(sorted({'keras', 'tensorflow'} & set(sys.modules)))"],
                          capture_output=True, text=True, cwd=tmp_path, check=True)
  assert loaded.stdout.strip() == "[]"


@pytest.mark.parametrize("hparam_str, message", [
    ("train.batchsize=3", r"Unknown hparam 'train.batchsize'. Valid keys: .*train.batch_size"),
    ("train.batch_size=abc", r"'train.batch_size' takes a int \(now 4096\), got 'abc'"),
    ("progressive.stages=2.5", r"'progressive.stages' takes a int"),
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
    ("model.num_classes=1", r"'model.num_classes' must be at least 2 \(one class leaves nothing to tell apart\), got 1"),
    ("train.batch_size=-4", r"'train.batch_size' must be at least 1, got -4"),
    ("runtime.checkpoint_steps=0", r"'runtime.checkpoint_steps' must be at least 1, got 0"),
    ("eval.image_size=0", r"'eval.image_size' must be at least 1"),
    ("train.epochs=-1.0", r"'train.epochs' must be positive"),
    ("augment.policy=randaugment", r"'augment.policy' is 'randaugment'; expected one of randaug, autoaug, none"),
    ("runtime.mixed_precision=bf16", r"'runtime.mixed_precision' is 'bf16'; expected one of auto, bfloat16"),
    ("train.lr_base=-0.1", r"'train.lr_base' must be more than 0, got -0.1"),  # trained until it diverged
    ("train.ema_decay=2.0", r"'train.ema_decay' must be from 0 up to, not including, 1 \(0.9999 officially\), got 2"),
    ("train.label_smoothing=1.5", r"'train.label_smoothing' must be from 0 up to, not including, 1"),
    ("regularization.survival_prob=0.0", r"'regularization.survival_prob' must be more than 0, at most 1"),
    ("mixing.mixup_max=-1.0", r"'mixing.mixup_max' must be 0 \(off\) or more, got -1"),
])
def test_values_no_run_can_use_are_refused_before_anything_is_built(hparam_str, message):
  with pytest.raises(ValueError, match=message):
    hparams.resolve(hparams.override(hparams.get_config("demo"), hparam_str))
