"""Our naming rule against the names the official code writes (tests/official_variables/, not ours)."""

import pytest

from effnetv2_tf.model import create_model
from effnetv2_tf.model.official_names import official_variable_name
from tests.helpers import OFFICIAL_MODELS, official_variables

pytestmark = pytest.mark.one_stack  # names and shapes: the same on every TensorFlow build


@pytest.mark.parametrize("model_name", OFFICIAL_MODELS)
def test_official_names_and_shapes_derived_from_our_model_equal_the_official_list(model_name):
  ours = {official_variable_name(model_name, v.path): tuple(v.shape) for v in create_model(model_name).weights}
  theirs = official_variables(model_name)
  assert sorted(set(ours) - set(theirs))[:5] == [] and sorted(set(theirs) - set(ours))[:5] == []
  assert {name: shape for name, shape in ours.items() if theirs[name] != shape} == {}
  assert len(ours) == len(theirs)


def test_the_lists_cover_both_block_kinds_and_both_families():
  assert OFFICIAL_MODELS == ["efficientnet-b0", "efficientnetv2-b0", "efficientnetv2-m", "efficientnetv2-s"]
  names = set(official_variables("efficientnetv2-s"))
  assert "efficientnetv2-s/blocks_0/conv2d/kernel" in names  # fused-MBConv
  assert "efficientnetv2-s/blocks_39/depthwise_conv2d/depthwise_kernel" in names  # MBConv
