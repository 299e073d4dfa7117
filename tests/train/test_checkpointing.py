"""CheckpointAndStop on fake host-loop results: the cadence, stage ends, loss jumps and stop signals (a stop
waits for the save to be written, inside the block a second signal does not cut short)."""

import contextlib

import pytest

from effnetv2_tf.train.checkpointing import CheckpointAndStop
from effnetv2_tf.train.preemption import Preempted


class _Signals:
  """StopSignals' face: the first signal received, and whether a save runs."""

  def __init__(self):
    self.received, self.saving_now = None, False

  @contextlib.contextmanager
  def saving(self):
    self.saving_now = True
    yield
    self.saving_now = False


def _hook(signals, events):
  def save(step):
    events.append(("save", step, signals.saving_now))
    return f"ckpt-{step}"
  return CheckpointAndStop(save, 4, signals, saved=lambda prefix: events.append(("saved", prefix)),
                           before_stop=lambda: events.append(("flushed",)),
                           finish_saves=lambda: events.append(("written", signals.saving_now)))


def test_saves_at_the_cadence_and_stage_ends_but_not_after_a_loss_jump():
  signals, events = _Signals(), []
  hook = _hook(signals, events)
  for step, verdict in [(1, "healthy"), (4, "ok"), (6, "healthy"), (8, "jump"), (9, "healthy"), (12, "healthy")]:
    hook.after_loop(step, stage_end=6 if step <= 6 else 12, verdict=verdict)
  assert events == [("save", 4, True), ("saved", "ckpt-4"), ("save", 6, True), ("saved", "ckpt-6"),
                    ("save", 12, True), ("saved", "ckpt-12")]


def test_a_signal_saves_whatever_the_loss_then_stops_and_one_during_an_eval_stops_without_a_save():
  signals, events = _Signals(), []
  hook = _hook(signals, events)
  signals.received = "SIGTERM"
  with pytest.raises(Preempted) as stopped:
    hook.after_loop(3, stage_end=6, verdict="jump")
  assert (stopped.value.signal_name, stopped.value.step) == ("SIGTERM", 3)
  assert events == [("save", 3, True), ("saved", "ckpt-3"), ("written", True), ("flushed",)]
  events.clear()
  signals.received = None
  hook.after_eval(6)  # none received: nothing happens
  assert events == []
  signals.received = "SIGINT"
  with pytest.raises(Preempted):
    hook.after_eval(6)
  assert events == [("flushed",)]


def test_a_signal_another_process_received_stops_this_one_at_the_same_step():
  """With several processes, each acts on the signal any of them received (the engine's agreed_signal): this one
  received none, yet saves the loop's step and stops, as the one that did."""
  signals, events = _Signals(), []
  hook = _hook(signals, events)
  hook.agreed_signal = lambda received: received or "SIGTERM"
  with pytest.raises(Preempted) as stopped:
    hook.after_loop(5, stage_end=6, verdict="ok")
  assert (stopped.value.signal_name, stopped.value.step) == ("SIGTERM", 5)
  assert events == [("save", 5, True), ("saved", "ckpt-5"), ("written", True), ("flushed",)]
