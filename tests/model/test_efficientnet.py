"""Whole models: official parameter counts, shapes, endpoints, names, serialization, bad input."""

import math

import keras
import numpy as np
import pytest

from effnetv2_tf.model import (create_backbone, create_model, feature_endpoints, model_from_config,
                              set_dropout_rate, set_survival_prob)
from effnetv2_tf.model.efficientnet import blocks_of
from effnetv2_tf.specs import round_filters

# Official counts at 1000 classes (trainable, total incl. BN moving statistics), from the automl
# model test and parameter tables.
OFFICIAL_PARAMS = {
    "efficientnetv2-b0": (7_139_704, 7_200_312),
    "efficientnetv2-b1": (8_141_052, 8_212_124),
    "efficientnetv2-b2": (10_096_086, 10_178_374),
    "efficientnetv2-b3": (14_358_406, 14_467_622),
    "efficientnetv2-s": (21_458_488, 21_612_360),
    "efficientnetv2-m": (54_139_356, 54_431_388),
    "efficientnetv2-l": (118_515_272, 119_027_848),
    "efficientnetv2-xl": (208_119_808, 208_896_832),
    "efficientnet-b0": (5_288_548, 5_330_564),
    "efficientnet-b3": (12_233_232, 12_320_528),
    "efficientnet-b6": (43_040_704, 43_265_136),
}
TINY = {"model": "efficientnetv2-b0", "width": 0.25, "depth": 0.3}


@pytest.mark.one_stack  # the structure: the same on every TensorFlow build
@pytest.mark.parametrize("name", list(OFFICIAL_PARAMS))
def test_parameter_counts_equal_the_official_ones(name):
  model = create_model(name)
  trainable = sum(math.prod(v.shape) for v in model.trainable_weights)
  assert (trainable, model.count_params()) == OFFICIAL_PARAMS[name]


@pytest.mark.parametrize("include_top, pooling, expected", [
    (True, None, (2, 7)), (False, None, (2, 2, 2, 1280)), (False, "avg", (2, 1280)), (False, "max", (2, 1280))])
def test_output_shapes(include_top, pooling, expected):
  model = create_model(**{**TINY, "width": 1.0}, include_top=include_top, pooling=pooling, num_classes=7)
  assert tuple(model(np.zeros((2, 64, 64, 3), "float32")).shape) == expected


def test_softmax_top_sums_to_one_and_none_gives_logits():
  x = np.random.default_rng(1).normal(size=(3, 32, 32, 3)).astype("float32")
  probs = create_model(**TINY, num_classes=5)(x).numpy()
  np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
  logits = create_model(**TINY, num_classes=5, classifier_activation=None)(x).numpy()
  assert (logits < 0).any()


@pytest.mark.parametrize("size", [224, 225])
def test_endpoint_shapes_follow_same_padding(size):
  backbone = create_backbone("efficientnetv2-s")
  features = backbone(np.zeros((1, size, size, 3), "float32"))
  expected_channels = [24, 48, 64, 160, 256]
  for level, channels in enumerate(expected_channels, start=1):
    side = math.ceil(size / 2**level)  # TF 'same': out = ceil(in / stride) at every stride-2 layer
    assert tuple(features[f"reduction_{level}"].shape) == (1, side, side, channels)


def test_feature_endpoints_work_on_a_classifier_too():
  model = create_model(**TINY)
  ends = feature_endpoints(model)
  assert list(ends) == [f"reduction_{level}" for level in range(1, 6)]
  # Stages 1, 2, 3, 5 end before a stride-2 stage; stage 6 is the last.
  expected = [round_filters(channels, TINY["width"], "v2") for channels in (16, 32, 48, 112, 192)]
  assert [e.shape[-1] for e in ends.values()] == expected == [8, 8, 16, 32, 48]


def test_survival_probability_falls_linearly_over_blocks():
  model = create_model("efficientnetv2-s", survival_prob=0.8)
  probs = {layer.name: layer.survival_prob for layer in model.layers if layer.name.startswith("blocks_")}
  assert probs["blocks_0"] == 1.0
  assert probs["blocks_39"] == pytest.approx(1 - 0.2 * 39 / 40)


def test_inference_is_deterministic_and_training_is_not():
  model = create_model(**TINY, survival_prob=0.5, dropout_rate=0.5, classifier_activation=None)
  x = np.random.default_rng(2).normal(size=(4, 32, 32, 3)).astype("float32")
  np.testing.assert_array_equal(model(x, training=False), model(x, training=False))
  assert not np.array_equal(model(x, training=True), model(x, training=True))


def test_config_round_trip_and_keras_save_load(tmp_path):
  model = create_model(**TINY, num_classes=3)
  x = np.random.default_rng(3).normal(size=(2, 48, 48, 3)).astype("float32")
  expected = model(x, training=False)

  clone = keras.Model.from_config(model.get_config())
  clone.set_weights(model.get_weights())
  np.testing.assert_array_equal(clone(x, training=False), expected)

  model.save(tmp_path / "tiny.keras")
  loaded = keras.models.load_model(tmp_path / "tiny.keras")
  np.testing.assert_array_equal(loaded(x, training=False), expected)
  assert [v.path for v in loaded.weights] == [v.path for v in model.weights]


def test_a_model_built_without_dropout_takes_a_scheduled_rate():
  model = create_model(**TINY, num_classes=3, dropout_rate=0.0, survival_prob=1.0, classifier_activation=None)
  x = np.random.default_rng(4).normal(size=(64, 32, 32, 3)).astype("float32")
  np.testing.assert_allclose(model(x, training=True), model(x, training=True))  # nothing random at rate 0
  set_dropout_rate(model, 0.5)
  assert model.get_layer("top_dropout").rate == 0.5
  assert not np.allclose(model(x, training=True), model(x, training=True))
  np.testing.assert_allclose(model(x, training=False), model(x, training=False))


def test_stochastic_depth_can_be_turned_off_and_on_again_in_a_built_model():
  model = create_model(**TINY, num_classes=3, dropout_rate=0.0, survival_prob=0.5, classifier_activation=None)
  built = [block.drop_path.survival_prob for block in blocks_of(model) if block.drop_path]
  x = np.random.default_rng(5).normal(size=(64, 32, 32, 3)).astype("float32")
  assert not np.allclose(model(x, training=True), model(x, training=True))  # branches dropped at random
  set_survival_prob(model, 1.0)
  np.testing.assert_allclose(model(x, training=True), model(x, training=True))  # nothing random left
  set_survival_prob(model, 0.5)  # block i of N keeps 1 - 0.5 * i / N, as built
  assert [block.drop_path.survival_prob for block in blocks_of(model) if block.drop_path] == built
  assert not np.allclose(model(x, training=True), model(x, training=True))
  plain = create_model(**TINY, num_classes=3, survival_prob=1.0)
  set_survival_prob(plain, 1.0)
  with pytest.raises(ValueError, match="built without stochastic depth and cannot take survival_prob 0.8"):
    set_survival_prob(plain, 0.8)


def test_zero_init_residual_zeroes_the_last_scale_of_every_residual_block_and_only_there():
  config = {"name": "efficientnetv2-b0", "num_classes": 3, "width": 0.25, "depth": 0.3, "zero_init_residual": True}
  model = model_from_config(config)
  blocks = blocks_of(model)
  assert 0 < sum(block.has_residual for block in blocks) < len(blocks)
  assert [not np.any(block.project_bn.gamma.numpy()) for block in blocks] == [
      block.has_residual for block in blocks]
  official = model_from_config({**config, "zero_init_residual": False})
  assert all(np.all(block.project_bn.gamma.numpy() == 1) for block in blocks_of(official))


def test_wrong_channel_count_says_so():
  model = create_model(**TINY)
  with pytest.raises(ValueError, match="efficientnetv2-b0.*expected axis -1 of input shape to have value 3"):
    model(np.zeros((1, 32, 32, 1), "float32"))


def test_single_channel_models_can_be_built():
  model = create_model(**TINY, input_shape=(None, None, 1), num_classes=2)
  assert model(np.zeros((1, 32, 32, 1), "float32")).shape == (1, 2)


@pytest.mark.parametrize("kwargs, message", [
    ({"input_shape": (32, 32)}, "input_shape must be"), ({"pooling": "mean"}, "pooling must be"),
    ({"model": "effnet"}, "Unknown model name")])
def test_bad_arguments_raise_clear_errors(kwargs, message):
  with pytest.raises(ValueError, match=message):
    create_model(**{**TINY, **kwargs})
