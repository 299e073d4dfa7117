"""When a run saves, and stopping on a signal: the hook after each host loop that keeps the run's checkpoints.

A checkpoint is due every runtime.checkpoint_steps and at each stage's end, unless the loop's loss jumped (its
weights wait for a calmer loop); a stop signal (StopSignals) saves at once, whatever the loss, and ends the run
with Preempted, which main turns into its exit status.
"""

from effnetv2_tf.train.preemption import Preempted


class CheckpointAndStop:
  """Saves a run's checkpoints at its cadence and stops it on a signal.

  Args:
    save: step -> the prefix of the checkpoint it saved (the engine's save).
    checkpoint_steps: the cadence, in steps.
    signals: the run's StopSignals (`received`, and `saving()`, a block a second signal does not cut short).
    saved: prefix -> None, told of each checkpoint saved (the DivergenceGuard's `saved`).
    before_stop: () -> None, called before the run stops (flushes the logs).
    finish_saves: () -> None, returns once the saves started are written (the engine's; a stop waits for them
      inside the save block, which a second signal does not cut short).
    agreed_signal: the signal received here -> the one to act on (the engine's: with several processes, the one
      any of them received, so that all save the same step and stop together).
  """

  def __init__(self, save, checkpoint_steps, signals, saved=lambda prefix: None, before_stop=lambda: None,
               finish_saves=lambda: None, agreed_signal=lambda received: received):
    self.save, self.checkpoint_steps, self.signals = save, checkpoint_steps, signals
    self.saved, self.before_stop, self.finish_saves = saved, before_stop, finish_saves
    self.agreed_signal = agreed_signal

  def after_loop(self, step, stage_end, verdict):
    """After the host loop that ended at `step` with `verdict` (DivergenceGuard's): saves when due or when a
    signal came, then stops the run on that signal (Preempted)."""
    stopping = self.agreed_signal(self.signals.received)  # a signal arriving after this: after the next loop
    due = step % self.checkpoint_steps == 0 or step == stage_end
    if stopping or (due and verdict != "jump"):
      with self.signals.saving():
        self.saved(self.save(step))
        if stopping:
          self.finish_saves()
    if stopping:
      self._stop(stopping, step)

  def after_eval(self, step):
    """After a stage's eval: stops the run on a signal that came during it (the stage's end is saved)."""
    if stopping := self.agreed_signal(self.signals.received):
      self._stop(stopping, step)

  def _stop(self, signal_name, step):
    self.before_stop()
    raise Preempted(signal_name, step)
