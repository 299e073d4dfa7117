"""Numerical agreement with keras.applications: proves block arithmetic, padding and BN semantics."""

import keras
import numpy as np
import pytest

from effnetv2_tf.model import create_model
from effnetv2_tf.weights.keras_applications import KERAS_CONSTRUCTORS, copy_from_keras_applications


def _randomize_batch_norm(model, rng):
  # Fresh BN layers are the identity at inference; random statistics make the comparison bite.
  for variable in model.weights:
    if variable.path.endswith(("moving_variance", "gamma")):
      variable.assign(rng.uniform(0.5, 1.5, variable.shape))
    elif variable.path.endswith(("moving_mean", "beta")):
      variable.assign(rng.normal(0, 0.2, variable.shape))


def test_v2_b0_logits_match_keras_applications():
  rng = np.random.default_rng(0)
  reference = keras.applications.EfficientNetV2B0(weights=None, include_preprocessing=False,
                                                  classifier_activation=None, input_shape=(224, 224, 3))
  _randomize_batch_norm(reference, rng)
  ours = create_model("efficientnetv2-b0", classifier_activation=None)
  copy_from_keras_applications(ours, reference)
  x = rng.normal(size=(2, 224, 224, 3)).astype("float32")
  expected = reference(x, training=False).numpy()
  assert np.abs(expected).max() > 0.1
  np.testing.assert_allclose(ours(x, training=False), expected, atol=1e-4, rtol=0)


def test_v2_b0_features_match_at_an_odd_size():
  rng = np.random.default_rng(1)
  reference = keras.applications.EfficientNetV2B0(weights=None, include_top=False, include_preprocessing=False,
                                                  input_shape=(None, None, 3))
  _randomize_batch_norm(reference, rng)
  ours = create_model("efficientnetv2-b0", include_top=False)
  copy_from_keras_applications(ours, reference)
  x = rng.normal(size=(1, 97, 97, 3)).astype("float32")
  np.testing.assert_allclose(ours(x, training=False), reference(x, training=False), atol=1e-4, rtol=0)


def test_another_variant_is_refused_with_the_layer_named():
  reference = keras.applications.EfficientNetV2B1(weights=None, include_top=False, include_preprocessing=False,
                                                  input_shape=(None, None, 3))
  ours = create_model("efficientnetv2-b0", include_top=False)
  before = [w.copy() for w in ours.get_weights()]
  with pytest.raises(ValueError, match="another variant. Nothing was copied"):
    copy_from_keras_applications(ours, reference)
  for old, new in zip(before, ours.get_weights()):
    np.testing.assert_array_equal(old, new)


def test_a_keras_applications_weights_file_loads_from_disk(tmp_path):
  from effnetv2_tf.weights.keras_applications import load_keras_applications_weights
  rng = np.random.default_rng(5)
  reference = keras.applications.EfficientNetV2B0(weights=None, classes=6, classifier_activation=None,
                                                  input_shape=(224, 224, 3))  # with its preprocessing layers
  _randomize_batch_norm(reference, rng)
  reference.save_weights(tmp_path / "v2b0.weights.h5")
  ours = create_model("efficientnetv2-b0", num_classes=6, classifier_activation=None)
  load_keras_applications_weights(ours, str(tmp_path / "v2b0.weights.h5"))
  x = rng.uniform(0, 255, (1, 224, 224, 3)).astype("float32")
  # keras.applications rescales [0, 255] images with ImageNet mean/std inside the model; ours takes them normalized.
  normalized = (x / 255 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
  np.testing.assert_allclose(ours(normalized.astype("float32"), training=False), reference(x, training=False),
                             atol=1e-4, rtol=1e-4)


@pytest.mark.e2e  # every variant at full size: 90 s
@pytest.mark.one_stack
@pytest.mark.parametrize("name", sorted(KERAS_CONSTRUCTORS))
def test_every_keras_applications_variant_copies_to_identical_outputs(name):
  """V2 B0-L and V1 B0-B7 at 64 px (even sizes all the way down, where keras' explicit V1 padding equals
  TF 'same'), with random batch-norm statistics and a 10-class classifier."""
  rng = np.random.default_rng(len(name))
  constructor = getattr(keras.applications, KERAS_CONSTRUCTORS[name])
  v2 = name.startswith("efficientnetv2")
  reference = constructor(weights=None, classes=10, classifier_activation=None, input_shape=(64, 64, 3),
                          **({"include_preprocessing": False} if v2 else {}))
  _randomize_batch_norm(reference, rng)
  ours = create_model(name, num_classes=10, classifier_activation=None)
  copy_from_keras_applications(ours, reference)
  x = rng.uniform(0, 255, (2, 64, 64, 3)).astype("float32")
  if v2:
    normalized = x
  else:  # V1 keeps its input normalization inside: feed ours what that part of the keras model makes of x
    normalization = next(layer for layer in reference.layers if isinstance(layer, keras.layers.Normalization))
    normalized = keras.Model(reference.input, normalization.output)(x)
  expected = reference(x, training=False).numpy()
  assert np.abs(expected).max() > 0.1
  np.testing.assert_allclose(ours(normalized, training=False), expected, atol=2e-4, rtol=1e-4)
