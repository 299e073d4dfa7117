"""Each layer alone: semantics against numpy, get_config round trips, stochastic depth statistics."""

import numpy as np
import pytest

from effnetv2_tf.model import ConvBNAct, FusedMBConv, MBConv, ScheduledDropout, SqueezeExcite, StochasticDepth

RNG = np.random.default_rng(0)


def _roundtrip(layer, x):
  """A layer rebuilt from its config, with the same weights, gives the same output."""
  expected = layer(x, training=False)
  clone = type(layer).from_config(layer.get_config())
  clone.build(x.shape)
  clone.set_weights(layer.get_weights())
  np.testing.assert_array_equal(clone(x, training=False), expected)
  assert clone.get_config() == layer.get_config()
  return expected


@pytest.mark.parametrize("layer", [
    ConvBNAct(8, 3, 2, name="stem"),
    MBConv(8, 8, 3, 1, 4, 0.25, survival_prob=0.7, name="blocks_3"),
    MBConv(8, 16, 5, 2, 1, 0.25, name="blocks_4"),
    FusedMBConv(8, 8, 3, 1, 1, name="blocks_0"),
    FusedMBConv(8, 16, 3, 2, 4, name="blocks_1"),
    SqueezeExcite(2, name="se"),
    StochasticDepth(0.8, seed=3),
    ScheduledDropout(0.3, seed=5),
], ids=lambda layer: type(layer).__name__)
def test_get_config_round_trip(layer):
  _roundtrip(layer, RNG.normal(size=(2, 9, 9, 8)).astype("float32"))


def test_squeeze_excite_matches_numpy():
  layer = SqueezeExcite(3, activation="silu")
  x = RNG.normal(size=(2, 5, 5, 12)).astype("float32")
  y = layer(x).numpy()
  w1, b1, w2, b2 = layer.get_weights()
  sigmoid = lambda v: 1 / (1 + np.exp(-v))
  hidden = x.mean(axis=(1, 2)) @ w1[0, 0] + b1
  gate = sigmoid((hidden * sigmoid(hidden)) @ w2[0, 0] + b2)
  np.testing.assert_allclose(y, x * gate[:, None, None, :], rtol=1e-5, atol=1e-6)
  assert w1.shape == (1, 1, 12, 3) and w2.shape == (1, 1, 3, 12)


def test_block_variable_names_follow_the_official_creation_order():
  block = MBConv(16, 16, 3, 1, 6, 0.25, name="blocks_7")
  block.build((None, 8, 8, 16))
  names = [v.path for v in block.weights]
  assert names[:6] == ["blocks_7/conv2d/kernel"] + [f"blocks_7/tpu_batch_normalization/{n}" for n in
                                                    ("gamma", "beta", "moving_mean", "moving_variance")] + [
                                                        "blocks_7/depthwise_conv2d/kernel"]
  assert "blocks_7/se/conv2d/kernel" in names and "blocks_7/se/conv2d_1/bias" in names
  assert "blocks_7/conv2d_1/kernel" in names and "blocks_7/tpu_batch_normalization_2/gamma" in names
  # The SE width comes from the block's input channels (16 * 0.25), not the expanded 96.
  se_shapes = {v.path: tuple(v.shape) for v in block.weights if "/se/" in v.path}
  assert se_shapes["blocks_7/se/conv2d/kernel"] == (1, 1, 96, 4)


def test_fused_block_without_expansion_is_one_strided_conv():
  block = FusedMBConv(8, 16, 3, 2, 1, name="blocks_0")
  y = block(np.ones((1, 9, 9, 8), "float32"))
  assert y.shape == (1, 5, 5, 16)
  assert [v.path for v in block.trainable_weights] == [
      "blocks_0/conv2d/kernel", "blocks_0/tpu_batch_normalization/gamma", "blocks_0/tpu_batch_normalization/beta"]
  assert block.weights[0].shape == (3, 3, 8, 16)


def test_stochastic_depth_drops_at_the_configured_rate():
  layer = StochasticDepth(0.8, seed=7)
  x = np.ones((20000, 1, 1, 1), "float32")
  y = layer(x, training=True).numpy().ravel()
  kept = y > 0
  assert abs(kept.mean() - 0.8) < 0.015  # 5 sigma is 0.014 for n = 20,000
  np.testing.assert_allclose(y[kept], 1 / 0.8)
  np.testing.assert_array_equal(layer(x, training=False), x)


def test_block_in_training_drops_whole_residual_branches():
  block = MBConv(8, 8, 3, 1, 2, 0.25, survival_prob=0.5, name="blocks_5")
  x = RNG.normal(size=(2000, 4, 4, 8)).astype("float32")
  y = block(x, training=True).numpy()
  dropped = np.all(y == x, axis=(1, 2, 3))  # a dropped branch leaves exactly the shortcut
  assert abs(dropped.mean() - 0.5) < 0.06
  np.testing.assert_array_equal(block(x, training=False), block(x, training=False))
  assert not np.any(np.all(block(x, training=False).numpy() == x, axis=(1, 2, 3)))


@pytest.mark.parametrize("block_class", [MBConv, FusedMBConv])
def test_a_zero_init_residual_block_starts_as_the_identity(block_class):
  x = RNG.normal(size=(2, 9, 9, 8)).astype("float32")
  block = block_class(8, 8, 3, 1, 4, 0.25, zero_init_residual=True, name="blocks_2")
  np.testing.assert_array_equal(block(x, training=True), x)  # its branch adds exactly 0, in training too
  _roundtrip(block, x)
  strided = block_class(8, 16, 3, 2, 4, 0.25, zero_init_residual=True, name="blocks_3")  # no shortcut: as usual
  strided.build(x.shape)
  np.testing.assert_array_equal(strided.project_bn.gamma.numpy(), np.ones(16))


def test_stochastic_depth_rejects_bad_probability():
  with pytest.raises(ValueError, match="survival_prob must be in"):
    StochasticDepth(0.0)


def test_scheduled_dropout_built_at_zero_drops_at_a_rate_set_later():
  layer = ScheduledDropout(0.0)
  x = np.ones((2000, 50), "float32")
  np.testing.assert_array_equal(layer(x, training=True), x)
  layer.rate = 0.6
  dropped = np.asarray(layer(x, training=True))
  assert abs((dropped == 0).mean() - 0.6) < 0.01
  np.testing.assert_allclose(dropped[dropped != 0], 1 / 0.4, rtol=1e-6)  # kept values rescaled
  np.testing.assert_array_equal(layer(x, training=False), x)
  with pytest.raises(ValueError, match=r"dropout rate must be in \[0, 1\), got 1.0"):
    layer.rate = 1.0
