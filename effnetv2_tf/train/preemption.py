"""Stopping on request: SIGTERM (a spot or preempted TPU VM's notice) and SIGINT (Ctrl-C) end the run after its
current host loop, with a checkpoint at that step, and the process exits with PREEMPTED_EXIT_STATUS.

While the handlers are installed the first signal only sets a flag. A second one ends the process at once,
without a checkpoint (exit 128 + the signal's number), unless it comes within DOUBLED_NOTICE_SECONDS of the
first (one notice delivered twice) or while a checkpoint is being written (TensorFlow writes to a temporary
name and renames; the save finishes). That is the way out of a run stuck where the flag is never read, e.g.
waiting for data that never comes: Python runs signal handlers only between bytecodes, so a watcher thread
reads the signals from a wakeup pipe, which the C-level handler writes to at once. The watcher needs the
interpreter too: signals sent while native code holds it (the TPU build searches for a TPU for about 5 s at the
first TensorFlow op) are read together when it is released, and count as one notice.

A supervisor that sends one signal and waits (`timeout`, a batch scheduler, a spot VM's notice) must see the
run end: when the host loop has not ended `bound_seconds` after the first signal (outside a save), the watcher
ends the process as a second signal would. Both say where the last checkpoint is, or that there is none yet.
"""

import contextlib
import os
import select
import signal
import threading
import time

PREEMPTED_EXIT_STATUS = 75  # EX_TEMPFAIL: a temporary failure; rerun the same command to resume
SIGNALS = (signal.SIGTERM, signal.SIGINT)
DOUBLED_NOTICE_SECONDS = 1.0


class Preempted(Exception):
  """The run stopped on a signal after saving a checkpoint at `step`."""

  def __init__(self, signal_name, step):
    super().__init__(f"stopped by {signal_name} at step {step}: checkpoint saved; rerun the same command to "
                     "resume")
    self.signal_name = signal_name
    self.step = step


def _say(line):
  os.write(2, f"\n{line}\n".encode())  # from the watcher thread: no Python buffer shared with the main thread


class StopSignals:
  """A context in which SIGTERM and SIGINT are recorded in `received` (the first one's name) instead of
  ending the process, and a second one ends it at once (see the module doc). Outside the main thread (where
  Python cannot take signals) it does nothing."""

  def __init__(self, bound_seconds=0.0, last_checkpoint=lambda: None):
    self.received = None
    self.bound_seconds = bound_seconds  # 0: no bound
    self._last_checkpoint = last_checkpoint  # () -> the newest checkpoint's path, for the line of a stop
    self._saving = False
    self._previous = {}
    self._previous_wakeup = None
    self._write_end = None

  def _record(self, signum, frame):
    self.received = self.received or signal.Signals(signum).name

  @contextlib.contextmanager
  def saving(self):
    """A block (a checkpoint save) that a second signal does not cut short."""
    self._saving = True
    try:
      yield
    finally:
      self._saving = False

  def _what_next(self):
    """What a rerun does after a stop without saving: resume from the last checkpoint, or start again."""
    try:
      latest = self._last_checkpoint()
    except Exception:  # noqa: BLE001 -- the line must come whatever the storage says
      latest = None
    return (f"the last checkpoint is {latest}; rerun the same command to resume from it" if latest else
            "no checkpoint had been saved; rerun the same command to start again")

  def _past_the_bound(self, signum):
    _say(f"{signal.Signals(signum).name}: the host loop did not end within {self.bound_seconds:g} s (runtime."
         f"stop_seconds): stopped without saving; {self._what_next()}")
    os._exit(128 + signum)

  def _watch(self, read_end):
    first, first_signum = None, None
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
      while True:
        if first is not None and self.bound_seconds > 0:
          left = first + self.bound_seconds - time.monotonic()
          if left <= 0 and not self._saving:
            self._past_the_bound(first_signum)
          if not select.select([pipe], [], [], left if left > 0 else 0.5)[0]:  # 0.5: a save's end
            continue
        data = pipe.read(64)
        if not data:
          return
        for signum in (number for number in data if number in SIGNALS):
          name = signal.Signals(signum).name
          if first is None:
            first, first_signum = time.monotonic(), signum
            _say(f"{name}: stopping after this host loop with a checkpoint; send it again to stop at once without one")
          elif time.monotonic() - first < DOUBLED_NOTICE_SECONDS:
            continue
          elif self._saving:
            _say(f"{name}: a checkpoint is being written; stopping when it is done")
          else:
            _say(f"{name} again: stopped at once without saving; {self._what_next()}")
            os._exit(128 + signum)

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      self._previous = {signum: signal.signal(signum, self._record) for signum in SIGNALS}
      read_end, self._write_end = os.pipe()
      os.set_blocking(self._write_end, False)  # the C handler must never block on a full pipe
      self._previous_wakeup = signal.set_wakeup_fd(self._write_end, warn_on_full_buffer=False)
      threading.Thread(target=self._watch, args=(read_end,), name="stop-signals", daemon=True).start()
    return self

  def __exit__(self, *exc_info):
    if self._write_end is not None:
      signal.set_wakeup_fd(self._previous_wakeup)
      os.close(self._write_end)  # the watcher reads the end of the pipe and returns
      self._write_end = None
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)
    self._previous = {}
