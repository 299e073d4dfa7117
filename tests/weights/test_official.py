"""Official TF1 name-based checkpoints, written under the official code's own variable names
(tests/official_variables/) with distinct raw and EMA values, the way the released tarballs hold them."""

import logging

import numpy as np
import pytest
import tensorflow as tf

from effnetv2_tf.model import create_model
from effnetv2_tf.weights import official as official_command
from effnetv2_tf.weights.official import CheckpointError, load_official_checkpoint
from tests.helpers import EMA_SUFFIX, call, official_values, randomize, write_official_checkpoint, write_tf1_checkpoint

pytestmark = pytest.mark.one_stack  # names and a checkpoint's reader: the same on every TensorFlow build

X = np.random.default_rng(0).normal(size=(2, 48, 48, 3)).astype("float32")
MODELS = ["efficientnetv2-b0", "efficientnet-b0"]  # Fused-MBConv + MBConv (V2), MBConv only (V1)


def _logits_model(name, **kwargs):
  return create_model(name, classifier_activation=None, **kwargs)


@pytest.fixture(scope="module", params=MODELS)
def official(request, tmp_path_factory):
  """(raw model, EMA model, the folder of an official-layout checkpoint holding both)."""
  raw, ema = _logits_model(request.param), _logits_model(request.param)
  randomize(raw, 1)
  randomize(ema, 2)
  folder = tmp_path_factory.mktemp(request.param)
  write_official_checkpoint(folder / "model", raw, ema)
  return raw, ema, folder


def test_ema_shadows_load_by_default_and_raw_weights_on_request(official):
  raw, ema, folder = official
  assert f"{raw.name}/stem/conv2d/kernel{EMA_SUFFIX}" in dict(tf.train.list_variables(str(folder)))
  with_ema, without = _logits_model(raw.name), _logits_model(raw.name)
  report = load_official_checkpoint(with_ema, str(folder))  # a folder works as well as a prefix
  assert report.loaded == report.from_ema == len(raw.weights)
  assert load_official_checkpoint(without, str(folder / "model"), use_ema=False).from_ema == 0
  np.testing.assert_array_equal(with_ema(X, training=False), ema(X, training=False))
  np.testing.assert_array_equal(without(X, training=False), raw(X, training=False))
  assert np.abs(with_ema(X, training=False) - without(X, training=False)).max() > 1e-3


def test_head_1_dense_is_accepted(official, tmp_path):
  raw, _, _ = official
  values = {name.replace("/head/dense/", "/head_1/dense/"): value for name, value in official_values(raw).items()}
  fresh = _logits_model(raw.name)
  load_official_checkpoint(fresh, write_tf1_checkpoint(tmp_path / "model", values))
  np.testing.assert_array_equal(fresh(X, training=False), raw(X, training=False))


def test_classifier_can_be_skipped_for_another_class_count(official):
  raw, ema, folder = official
  fresh = _logits_model(raw.name, num_classes=7)
  with pytest.raises(CheckpointError, match="mis-shaped.*head/dense/kernel"):
    load_official_checkpoint(fresh, str(folder))
  report = load_official_checkpoint(fresh, str(folder), skip_classifier=True)
  assert report.skipped_classifier == ["predictions/kernel", "predictions/bias"]
  only_if_needed = _logits_model(raw.name, num_classes=7)
  report = load_official_checkpoint(only_if_needed, str(folder), replace_mismatched_classifier=True)
  assert report.skipped_classifier == ["predictions/kernel", "predictions/bias"]
  same_classes = _logits_model(raw.name)
  report = load_official_checkpoint(same_classes, str(folder), replace_mismatched_classifier=True)
  assert report.skipped_classifier == []
  np.testing.assert_array_equal(same_classes(X, training=False), ema(X, training=False))
  np.testing.assert_array_equal(fresh.get_layer("head").get_weights()[0], ema.get_layer("head").get_weights()[0])


def test_another_variant_or_width_is_refused_and_nothing_is_loaded(official):
  raw, _, folder = official
  other = _logits_model("efficientnetv2-b1" if raw.name != "efficientnetv2-b1" else "efficientnetv2-b2")
  with pytest.raises(CheckpointError, match=f"holds {raw.name} variables, not {other.name}"):
    load_official_checkpoint(other, str(folder))
  wider = _logits_model(raw.name, width=1.5)
  before = [w.copy() for w in wider.get_weights()]
  with pytest.raises(CheckpointError, match=rf"does not fit {raw.name} \(\d+ missing, \d+ mis-shaped\).*Nothing"):
    load_official_checkpoint(wider, str(folder))
  for old, new in zip(before, wider.get_weights()):
    np.testing.assert_array_equal(old, new)


def test_names_that_differ_are_shown_as_a_pair(official, tmp_path):
  """A naming difference (here a graph-mode `_1` suffix on every SE scope) is diagnosed in one read."""
  raw, _, _ = official
  values = {name.replace("/se/", "/se_1/"): value for name, value in official_values(raw).items()}
  values.update({f"{name}{EMA_SUFFIX}": value for name, value in list(values.items())})
  prefix = write_tf1_checkpoint(tmp_path / "model", values)
  with pytest.raises(CheckpointError) as error:
    load_official_checkpoint(_logits_model(raw.name), prefix)
  pair = r"names differ, e\.g\. the loader expects (\S+)/se/(\S+) and the checkpoint has \1/se_1/\2;"
  assert error.match(pair), str(error.value)


def test_a_moved_tarball_with_a_stale_absolute_path_loads_without_an_error_line(official, tmp_path, capfd, caplog):
  raw, ema, folder = official
  moved = tmp_path / "moved"
  moved.mkdir()
  for file in folder.iterdir():
    (moved / file.name).write_bytes(file.read_bytes())
  (moved / "checkpoint").write_text('model_checkpoint_path: "/home/somebody/train/model"\n'
                                    'all_model_checkpoint_paths: "/home/somebody/train/model"\n')
  fresh = _logits_model(raw.name)
  with caplog.at_level(logging.INFO):
    load_official_checkpoint(fresh, str(moved))
  np.testing.assert_array_equal(fresh(X, training=False), ema(X, training=False))
  logged = capfd.readouterr().err + caplog.text
  assert "Couldn't match files" not in logged and "ERROR" not in logged


def test_a_path_that_is_not_a_checkpoint(tmp_path):
  (tmp_path / "notes.txt").write_text("hello")
  with pytest.raises(CheckpointError, match="is not a TF checkpoint"):
    load_official_checkpoint(_logits_model("efficientnetv2-b0"), str(tmp_path / "notes.txt"))


def test_command_line_converts_to_a_keras_weights_file(official, tmp_path):
  raw, ema, folder = official
  done = call(official_command.main, folder, tmp_path / "m.weights.h5", "--model", raw.name)
  assert done.returncode == 0, done.stderr[-2000:]
  assert f"{len(raw.weights)} variables loaded ({len(raw.weights)} from EMA shadows, 0 raw)" in done.stdout
  loaded = _logits_model(raw.name)
  loaded.load_weights(tmp_path / "m.weights.h5")
  np.testing.assert_array_equal(loaded(X, training=False), ema(X, training=False))
