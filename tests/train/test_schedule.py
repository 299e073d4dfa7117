import numpy as np
import pytest

from effnetv2_tf.model import get_model_spec
from effnetv2_tf.train.schedule import PAPER_TABLE6, ProgressiveSchedule


def _official(name, total_steps=1000):
  spec = get_model_spec(name)
  return ProgressiveSchedule(total_steps, 4, (128, spec.train_size), (5, spec.randaug_magnitude),
                             (0, spec.mixup_alpha), (0, spec.mixup_alpha), (spec.dropout_rate, spec.dropout_rate))


@pytest.mark.parametrize("name, sizes", [("efficientnetv2-s", [171, 214, 257, 300]),
                                         ("efficientnetv2-m", [192, 256, 320, 384]),
                                         ("efficientnetv2-l", [192, 256, 320, 384])])
def test_official_rule_equals_the_official_formulas(name, sizes):
  spec = get_model_spec(name)
  stages = _official(name, total_steps=107_336).stages
  # main.py: size int(128 + (train - 128) * (i + 1) / M); RA and mix linspace(min, max, M)[i].
  assert [s.image_size for s in stages] == sizes == [int(128 + (spec.train_size - 128) * (i + 1) / 4)
                                                    for i in range(4)]
  np.testing.assert_allclose([s.randaug_magnitude for s in stages], np.linspace(5, spec.randaug_magnitude, 4))
  np.testing.assert_allclose([s.mixup_alpha for s in stages], np.linspace(0, spec.mixup_alpha, 4))
  np.testing.assert_allclose([s.cutmix_alpha for s in stages], np.linspace(0, spec.mixup_alpha, 4))
  assert {s.dropout_rate for s in stages} == {spec.dropout_rate}
  assert [s.end_step for s in stages] == [int((i + 1) / 4 * 107_336) for i in range(4)]
  assert [s.start_step for s in stages[1:]] == [s.end_step for s in stages[:-1]] and stages[0].start_step == 0


@pytest.mark.parametrize("name", sorted(PAPER_TABLE6))
def test_paper_rule_follows_table_6(name):
  table = PAPER_TABLE6[name]
  schedule = ProgressiveSchedule(400, 4, table["image_size"], table["randaug"], table["mixup"], table["mixup"],
                                 table["dropout"], rule="paper")
  stages = schedule.stages
  assert (stages[0].image_size, stages[-1].image_size) == table["image_size"]
  for field, key in (("randaug_magnitude", "randaug"), ("mixup_alpha", "mixup"), ("dropout_rate", "dropout")):
    np.testing.assert_allclose([getattr(s, field) for s in stages], np.linspace(*table[key], 4))


def test_stage_at_and_a_single_stage():
  schedule = _official("efficientnetv2-s", total_steps=100)
  assert [schedule.stage_at(step).index for step in (0, 24, 25, 74, 75, 99, 100, 5000)] == [0, 0, 1, 2, 3, 3, 3, 3]
  single = ProgressiveSchedule(10, 1, (128, 300), (5, 10), dropout_rate=(0.1, 0.2))
  assert [(s.image_size, s.randaug_magnitude, s.dropout_rate) for s in single.stages] == [(300, 10, 0.2)]


def test_bad_settings_are_clear_errors():
  with pytest.raises(ValueError, match="Unknown progressive-learning rule 'table6'"):
    ProgressiveSchedule(100, 4, (128, 300), rule="table6")
  with pytest.raises(ValueError, match="total_steps \\(3\\) must be at least the number of stages \\(4\\)"):
    ProgressiveSchedule(3, 4, (128, 300))
