"""Official TF1 name-based checkpoints, written the way the official tarballs are laid out."""

import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from effnetv2_tf.model import create_model
from effnetv2_tf.model.official_names import official_variable_name
from effnetv2_tf.weights.official import CheckpointError, load_official_checkpoint

TINY = {"model": "efficientnetv2-b0", "width": 0.25, "depth": 0.25, "classifier_activation": None}
X = np.random.default_rng(0).normal(size=(2, 48, 48, 3)).astype("float32")


def _randomize(model, seed):
  rng = np.random.default_rng(seed)
  for v in model.weights:
    v.assign(rng.uniform(0.5, 1.5, v.shape) if v.path.endswith("variance") else rng.normal(0, 0.3, v.shape))


def _write_tf1_checkpoint(prefix, named_values):
  """A TF1 name-based checkpoint (tf.compat.v1 Saver), as google/automl writes them."""
  with tf.Graph().as_default():
    variables = {name: tf.compat.v1.Variable(value, name=f"v{i}")
                 for i, (name, value) in enumerate(named_values.items())}
    variables["global_step"] = tf.compat.v1.Variable(np.int64(123), name="global_step")
    saver = tf.compat.v1.train.Saver(var_list=variables)
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      return saver.save(session, str(prefix))


def _official_values(model, classifier="head"):
  values = {}
  for v in model.weights:
    name = official_variable_name(model.name, v.path)
    if classifier == "head_1":
      name = name.replace("/head/dense/", "/head_1/dense/")
    values[name] = v.numpy()
  return values


@pytest.fixture
def source():
  model = create_model(**TINY, num_classes=4)
  _randomize(model, 1)
  return model


def test_raw_names_load_to_identical_outputs(source, tmp_path):
  _write_tf1_checkpoint(tmp_path / "model", _official_values(source))
  assert "efficientnetv2-b0/blocks_0/conv2d/kernel" in dict(tf.train.list_variables(str(tmp_path / "model")))
  fresh = create_model(**TINY, num_classes=4)
  report = load_official_checkpoint(fresh, str(tmp_path))  # a folder works as well as a prefix
  assert report.loaded == len(_official_values(source)) and report.from_ema == 0
  np.testing.assert_array_equal(fresh(X, training=False), source(X, training=False))


def test_ema_shadows_are_preferred_and_raw_on_request(source, tmp_path):
  ema_model = create_model(**TINY, num_classes=4)
  _randomize(ema_model, 2)
  values = _official_values(source)
  values.update({f"{name}/ExponentialMovingAverage": value for name, value in _official_values(ema_model).items()})
  values.update({f"{name}/RMSProp": np.ones_like(value) for name, value in list(values.items())[:3]})  # slots: ignored
  prefix = _write_tf1_checkpoint(tmp_path / "model", values)
  with_ema, raw = create_model(**TINY, num_classes=4), create_model(**TINY, num_classes=4)
  assert load_official_checkpoint(with_ema, prefix).from_ema == len(_official_values(source))
  load_official_checkpoint(raw, prefix, use_ema=False)
  np.testing.assert_array_equal(with_ema(X, training=False), ema_model(X, training=False))
  np.testing.assert_array_equal(raw(X, training=False), source(X, training=False))


def test_head_1_dense_is_accepted(source, tmp_path):
  prefix = _write_tf1_checkpoint(tmp_path / "model", _official_values(source, classifier="head_1"))
  fresh = create_model(**TINY, num_classes=4)
  load_official_checkpoint(fresh, prefix)
  np.testing.assert_array_equal(fresh(X, training=False), source(X, training=False))


def test_classifier_can_be_skipped_for_another_class_count(source, tmp_path):
  prefix = _write_tf1_checkpoint(tmp_path / "model", _official_values(source))
  fresh = create_model(**TINY, num_classes=7)
  with pytest.raises(CheckpointError, match="mis-shaped.*head/dense/kernel"):
    load_official_checkpoint(fresh, prefix)
  report = load_official_checkpoint(fresh, prefix, skip_classifier=True)
  assert report.skipped_classifier == ["predictions/kernel", "predictions/bias"]
  only_if_needed = create_model(**TINY, num_classes=7)
  report = load_official_checkpoint(only_if_needed, prefix, replace_mismatched_classifier=True)
  assert report.skipped_classifier == ["predictions/kernel", "predictions/bias"]
  same_classes = create_model(**TINY, num_classes=4)
  assert load_official_checkpoint(same_classes, prefix, replace_mismatched_classifier=True).skipped_classifier == []
  np.testing.assert_array_equal(same_classes(X, training=False), source(X, training=False))
  np.testing.assert_array_equal(fresh.get_layer("head").get_weights()[0], source.get_layer("head").get_weights()[0])


def test_another_variant_is_refused_and_nothing_is_loaded(source, tmp_path):
  prefix = _write_tf1_checkpoint(tmp_path / "model", _official_values(source))
  other = create_model("efficientnetv2-b1", width=0.25, depth=0.25, num_classes=4)
  with pytest.raises(CheckpointError, match="holds efficientnetv2-b0 variables, not efficientnetv2-b1"):
    load_official_checkpoint(other, prefix)
  wider = create_model(**{**TINY, "width": 0.5}, num_classes=4)
  before = [w.copy() for w in wider.get_weights()]
  with pytest.raises(CheckpointError, match=r"does not fit efficientnetv2-b0 \(\d+ missing, \d+ mis-shaped\).*Nothing"):
    load_official_checkpoint(wider, prefix)
  for old, new in zip(before, wider.get_weights()):
    np.testing.assert_array_equal(old, new)


def test_a_path_that_is_not_a_checkpoint(tmp_path):
  (tmp_path / "notes.txt").write_text("hello")
  with pytest.raises(CheckpointError, match="is not a TF checkpoint"):
    load_official_checkpoint(create_model(**TINY, num_classes=4), str(tmp_path / "notes.txt"))


def test_command_line_converts_to_a_keras_weights_file(tmp_path):
  full = create_model("efficientnetv2-b0", classifier_activation=None)
  _randomize(full, 3)
  prefix = _write_tf1_checkpoint(tmp_path / "model", _official_values(full))
  done = subprocess.run([sys.executable, "-m", "effnetv2_tf.weights.official", prefix, str(tmp_path / "b0.weights.h5"),
                         "--model", "efficientnetv2-b0"], capture_output=True, text=True, timeout=300)
  assert done.returncode == 0, done.stderr[-2000:]
  assert "variables loaded" in done.stdout
  loaded = create_model("efficientnetv2-b0", classifier_activation=None)
  loaded.load_weights(tmp_path / "b0.weights.h5")
  x = np.random.default_rng(4).normal(size=(1, 64, 64, 3)).astype("float32")
  np.testing.assert_array_equal(loaded(x, training=False), full(x, training=False))
