"""Divergence: a loss that is not finite, or that has grown by orders of magnitude, and weights, BN statistics,
EMA or optimizer slots beyond any a converging run holds, must never reach a checkpoint, since a resume (with a
lower learning rate, say) could only start from exploded weights."""

import math
import statistics

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
