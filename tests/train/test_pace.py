"""A step's cost over host loops and at any image size, and the run's time left estimated with it."""

import pytest

from effnetv2_tf.train.pace import LoopClock, RunPaces, pace_at, scaled
from effnetv2_tf.train.schedule import Stage


def test_the_loop_clock_s_pace_leaves_out_the_first_loop_which_also_traces_the_step():
  now = [0.0]

  def loop_of(seconds_per_step, trace=0.0):
    def run(num_steps):
      now[0] += trace + num_steps * seconds_per_step
      return num_steps
    return run

  clock = LoopClock(now=lambda: now[0])
  assert clock.time(loop_of(0.5, trace=12.0), 2) == 2
  assert clock.pace is None and clock.compile_seconds == 13.0  # alone, the first loop is all compile time
  clock.time(loop_of(0.5), 4)
  clock.time(loop_of(0.75), 4)
  assert clock.pace == pytest.approx(0.625) and clock.seconds == 3.0
  assert clock.compile_seconds == pytest.approx(13.0 - 2 * 0.625)


def test_a_step_costs_a_fixed_part_and_a_part_per_pixel():
  pace = pace_at({96: 1.0, 192: 4.0})
  assert pace(96) == pytest.approx(1.0) and pace(192) == pytest.approx(4.0)
  assert pace(144) == pytest.approx(1.0 + 3.0 * (144 ** 2 - 96 ** 2) / (192 ** 2 - 96 ** 2))
  assert pace_at({128: 2.0})(64) == pytest.approx(0.5)  # one size timed: in proportion to the pixels


def test_a_measured_pace_scales_every_timed_size_alike():
  timed = {96: 1.0, 192: 4.0}
  assert scaled(timed, 96, 0.5) == {96: 0.5, 192: 2.0}
  at_144 = pace_at(timed)(144)  # between the sizes timed: their line's reading there sets the factor
  assert scaled(timed, 144, 2 * at_144) == {96: pytest.approx(2.0), 192: pytest.approx(8.0)}


def test_the_time_left_counts_each_stage_at_its_own_pace():
  stages = [Stage(index=i, start_step=100 * i, end_step=100 * (i + 1), image_size=size, dropout_rate=0.1,
                  randaug_magnitude=5.0, mixup_alpha=0.0, cutmix_alpha=0.0)
            for i, size in enumerate((96, 144, 192))]
  paces = RunPaces()
  assert paces.seconds_left(stages, 150) is None  # no pace known yet
  # Timed at 96 and 192 px (a time budget): 50 steps left at 144 px and 100 at 192, each at its own pace.
  timed = {96: 1.0, 192: 4.0}
  paces.timed_at(timed, trace_seconds=20.0)
  assert paces.seconds_left(stages, 150) == pytest.approx(50 * pace_at(timed)(144) + 100 * 4.0)
  # A stage's own pace: its size at it, the sizes only timed scaled alike.
  paces.measured_at(96, 0.5)
  assert paces.paces() == {96: 0.5, 192: 2.0} and paces.trace_seconds == 20.0
  assert paces.seconds_left(stages, 150) == pytest.approx(50 * pace_at({96: 0.5, 192: 2.0})(144) + 100 * 2.0)
  # One size known: the others in proportion to the pixels.
  alone = RunPaces()
  alone.measured_at(144, 2.0)
  assert alone.seconds_left(stages, 150) == pytest.approx(50 * 2.0 + 100 * 2.0 * (192 / 144) ** 2)


def test_the_time_left_counts_the_compiles_to_come_at_the_longest_seen():
  stages = [Stage(index=i, start_step=10 * i, end_step=10 * (i + 1), image_size=96, dropout_rate=0.1,
                  randaug_magnitude=5.0, mixup_alpha=0.0, cutmix_alpha=0.0) for i in range(3)]
  paces = RunPaces()
  paces.measured_at(96, 1.0, compile_seconds=54.0)
  paces.measured_at(96, 1.0, compile_seconds=0.5)  # a later loop: no compile in it
  assert paces.seconds_left(stages, 5) == pytest.approx(25.0)
  assert paces.seconds_left(stages, 5, compiles=2) == pytest.approx(25.0 + 2 * 54.0)


def test_a_step_is_timed_over_a_loop_of_the_seconds_asked_and_a_slower_one_once():
  from effnetv2_tf.train.pace import time_loop
  for pace, loops in ((0.1, [1, 1, 30]), (5.0, [1, 1])):
    calls, clock = [], [0.0]

    def run_loop(steps):  # a first call that compiles for 10 s, then `pace` a step
      calls.append(steps)
      clock[0] += steps * pace + (10.0 if len(calls) == 1 else 0.0)
      return steps

    timed, result = time_loop(run_loop, 3.0, now=lambda: clock[0])
    assert calls == loops and result == loops[-1]
    assert timed.pace == pytest.approx(pace) and timed.compile_seconds == pytest.approx(10.0)
