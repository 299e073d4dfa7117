"""Stopping on request: SIGTERM (a spot or preempted TPU VM's notice) and SIGINT (Ctrl-C) end the run after its
current host loop, with a checkpoint at that step, and the process exits with PREEMPTED_EXIT_STATUS.

While the handlers are installed a signal only sets a flag, so a second signal during the save changes
nothing: the save finishes (and TensorFlow writes checkpoints to a temporary name, then renames).
"""

import signal
import threading

PREEMPTED_EXIT_STATUS = 75  # EX_TEMPFAIL: a temporary failure; rerun the same command to resume
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Preempted(Exception):
  """The run stopped on a signal after saving a checkpoint at `step`."""

  def __init__(self, signal_name, step):
    super().__init__(f"stopped by {signal_name} at step {step}: checkpoint saved; rerun the same command to "
                     "resume")
    self.signal_name = signal_name
    self.step = step


class StopSignals:
  """A context in which SIGTERM and SIGINT are recorded in `received` (the first one's name) instead of
  ending the process. Outside the main thread (where Python cannot take signals) it does nothing."""

  def __init__(self):
    self.received = None
    self._previous = {}

  def _record(self, signum, frame):
    self.received = self.received or signal.Signals(signum).name

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      self._previous = {signum: signal.signal(signum, self._record) for signum in SIGNALS}
    return self

  def __exit__(self, *exc_info):
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)
    self._previous = {}
