import pytest

from effnetv2_tf import specs


def test_decode_stage_reads_every_token():
  stage = specs.decode_stage("r15_k3_s2_e6_i160_o256_se0.25")
  assert stage == specs.StageSpec(repeats=15, kernel_size=3, strides=2, expand_ratio=6, input_filters=160,
                                  output_filters=256, se_ratio=0.25, fused=False)
  assert specs.decode_stage("r2_k3_s1_e1_i24_o24_c1").fused
  assert specs.decode_stage("r2_k3_s1_e1_i24_o24_c1").se_ratio is None


@pytest.mark.parametrize("bad, message", [("r2_k3_s1_e1_i24", "lacks o"), ("r2_k3_s1_e1_i24_o24_x9", "'x9'")])
def test_decode_stage_names_the_problem(bad, message):
  with pytest.raises(ValueError, match=message):
    specs.decode_stage(bad)


def test_round_filters_v1_keeps_the_90_percent_rule_v2_does_not():
  # 16 * 1.2 = 19.2: the V2 code rounds to 16, official V1 (and keras EfficientNetB3) to 24.
  assert specs.round_filters(16, 1.2, "v2") == 16
  assert specs.round_filters(16, 1.2, "v1") == 24
  assert specs.round_filters(1280, 1.1, "v2") == 1408
  assert specs.round_filters(1280, 1.2, "v2") == 1536
  assert specs.round_filters(4, 1.0, "v2") == specs.MIN_DEPTH


def test_round_repeats_is_ceil():
  assert [specs.round_repeats(r, 1.4) for r in (1, 2, 3, 5, 8)] == [2, 3, 5, 7, 12]


def test_unknown_model_name_lists_valid_names():
  with pytest.raises(ValueError, match="efficientnetv2-xs.*Valid names: .*efficientnetv2-s.*efficientnet-b7"):
    specs.get_model_spec("efficientnetv2-xs")
