"""Divergence: a loss that is not finite, or that has grown by orders of magnitude, and weights, BN statistics,
EMA or optimizer slots beyond any a converging run holds, must never reach a checkpoint, since a resume (with a
lower learning rate, say) could only start from exploded weights.

LossWatch judges each host loop's loss, value_problem the values a loop leaves, and DivergenceGuard, called
after each host loop, acts on both: it warns of a jump and stops a diverging run, setting aside the checkpoints
no healthy loop has proven.
"""

import math
import os
import statistics
import sys

# A loop loss this many times the run's lowest one, and this many times the loss of a uniform guess
# (ln of the class count: a model that confidently predicts wrong classes), is a divergence: the weights
# are not saved. The second bound keeps a run that had memorised its data (loss near 0) from tripping on a
# harder stage.
DIVERGED_RATIO = 10.0
DIVERGED_OVER_UNIFORM = 10.0
# A loop loss within this many times the run's lowest, or this many times a uniform guess's, is healthy: it
# proves the weights the loop started from. Between healthy and diverged a run goes on and saves, but its
# checkpoints are not proven: a divergence sets them all aside.
HEALTHY_RATIO = 3.0
HEALTHY_OVER_UNIFORM = 2.0
# A loop loss this many times the recent median is worth a loud warning.
JUMP_RATIO = 10.0
RECENT = 20
# The advice's rate: a tenth of the run's, or, where lower, half of the highest rate a healthy loop trained at
# (as a share of the schedule's peak): a run that went through a warm-up diverged on the way up, and the rate it
# last trained healthily at bounds the next try, so that advice followed takes a round or two, not one per tenfold.
# A run with no healthy loop at all is told a hundredth.
ADVICE_SHARE = 0.5
PEAK_SAMPLES = 256  # steps of the schedule at which its peak rate is looked for
# A saved value beyond this is an explosion under way, whatever the loss says yet: weights under weight decay,
# BN statistics of normalized activations and the optimizers' slots (momenta, mean squares of gradients) stay
# orders of magnitude below it in a run that converges.
VALUE_BOUND = 1e6


class LossWatch:
  """Judges each host loop's mean loss against the run's history of loop losses."""

  def __init__(self, num_classes, losses=()):
    uniform = math.log(max(num_classes, 2))
    self.floor = DIVERGED_OVER_UNIFORM * uniform
    self.healthy_floor = HEALTHY_OVER_UNIFORM * uniform
    self.losses = list(losses)

  def check(self, loss):
    """("healthy" | "ok" | "jump" | "diverged", reason); all but "diverged" losses join the history."""
    if loss != loss or loss in (float("inf"), float("-inf")):
      return "diverged", f"the loss became {loss}"
    if self.losses:
      lowest = min(self.losses)
      if loss > max(DIVERGED_RATIO * lowest, self.floor):
        return "diverged", f"the loss grew to {loss:.4g} (the run's lowest was {lowest:.4g})"
    recent = statistics.median(self.losses[-RECENT:]) if self.losses else None
    self.losses.append(loss)
    if recent and loss > JUMP_RATIO * recent:
      return "jump", f"the loss jumped to {loss:.4g}, {loss / recent:.0f}x its recent median ({recent:.4g})"
    if loss <= max(HEALTHY_RATIO * min(self.losses), self.healthy_floor):
      return "healthy", ""
    return "ok", ""


def value_problem(largest):
  """Why the values about to be saved are not healthy, or None: `largest` maps each value's name to its
  largest absolute value (NaN where it holds one)."""
  name, value = max(largest.items(), key=lambda item: math.inf if math.isnan(item[1]) else item[1],
                    default=(None, 0.0))
  if not math.isfinite(value):
    return f"{name} became {value}"
  if value > VALUE_BOUND:
    return f"{name} reached {value:.3g}"
  return None


class DivergenceGuard:
  """Watches a run's host loops for a divergence and stops it with the way on.

  Args:
    watch: the run's LossWatch.
    run_dir: the RunDir whose checkpoints a divergence sets aside (the chief's only).
    lr_base: the run's train.lr_base (the advice names a lower one).
    is_chief: whether this process moves checkpoints.
    largest_values: () -> {name: largest absolute value} of what a checkpoint would save now.
    before_stop: () -> None, called before the run stops (ends the progress line, flushes the logs).
    learning_rate: step -> the schedule's rate, and total_steps its length: where given, the advice bounds the
      rate by the highest one a healthy loop trained at (ADVICE_SHARE).
  """

  def __init__(self, watch, run_dir, lr_base, is_chief, largest_values, before_stop=lambda: None,
               learning_rate=None, total_steps=0):
    self.watch, self.run_dir, self.lr_base, self.is_chief = watch, run_dir, lr_base, is_chief
    self.largest_values, self.before_stop = largest_values, before_stop
    self.learning_rate, self.total_steps = learning_rate, total_steps
    self.healthy_rate = 0.0  # the highest rate a healthy loop of this process ended at
    # The checkpoints no healthy host loop has started from since they were saved (the restored one first).
    latest = run_dir.latest_checkpoint()
    self.unproven = [latest] if latest else []

  def after_loop(self, step, loss):
    """The verdict on the host loop that ended at `step` with mean `loss`: "healthy", "ok" or "jump" (its
    weights are not to be saved); a divergence raises FloatingPointError, with nothing of the loop saved."""
    verdict, reason = self.watch.check(loss)
    problem = value_problem(self.largest_values())
    if problem:
      verdict, reason = "diverged", problem
    if verdict == "diverged":
      self._stop(step, reason)
    if verdict == "healthy":  # the weights the loop started from, and so every checkpoint before, are
      self.unproven = []
      if self.learning_rate:
        self.healthy_rate = max(self.healthy_rate, float(self.learning_rate(step)))
    if verdict == "jump":
      print(f"\nwarning: at step {step} {reason}: the run may be diverging (lower train.lr_base or set "
            "train.gradient_clip)", file=sys.stderr, flush=True)
    return verdict

  def saved(self, prefix):
    """Notes checkpoint `prefix`, just saved: unproven until a healthy loop starts from it."""
    self.unproven.append(prefix)

  def _stop(self, step, reason):
    self.before_stop()
    said = f"Training diverged at step {step}: {reason}. Nothing of it was saved"
    complete = self.run_dir.complete_checkpoints()
    unproven = [prefix for prefix in self.unproven if prefix in complete]  # not those rotation removed
    if unproven and self.is_chief:
      folder = self.run_dir.set_aside(unproven)
      names = ", ".join(os.path.basename(prefix) for prefix in unproven)
      said += (f", and {names}, saved since the loss was last healthy, {'was' if len(unproven) == 1 else 'were'} "
               f"moved to {folder}")
    lower = f"a lower learning rate ({self._lower_rate()}, or train.gradient_clip)"
    latest = self.run_dir.latest_checkpoint()
    if latest:
      advice = (f"to go on from {os.path.basename(latest)}, the last healthy checkpoint, rerun with {lower} and "
                "--continue_with_new_settings")
    else:
      advice = f"no healthy checkpoint is left: start again with {lower}"
    raise FloatingPointError(f"{said}; {advice}.")

  def _lower_rate(self):
    """The advice's train.lr_base and why: a tenth of the run's, or lower where the run's healthy loops say so."""
    tenth = f"train.lr_base={self.lr_base / 10:g}, a tenth"
    if not self.learning_rate or self.total_steps <= 0:
      return tenth
    every = max(1, self.total_steps // PEAK_SAMPLES)
    peak = max(float(self.learning_rate(step)) for step in range(0, self.total_steps + 1, every))
    if peak <= 0:
      return tenth
    if not self.healthy_rate:
      return f"train.lr_base={self.lr_base / 100:.3g}, a hundredth: no loop of this run was healthy"
    share = ADVICE_SHARE * self.healthy_rate / peak
    if share >= 0.1:
      return tenth
    return (f"train.lr_base={self.lr_base * share:.3g}: the schedule's peak at half the highest rate a healthy loop "
            f"trained at, {self.healthy_rate:.3g}")
