"""Progressive learning with adaptive regularization: what each training stage uses.

The loop asks the schedule, never recomputes it. Two interpolation rules:
- "official" (google/automl main.py): stage i of M trains up to step (i+1)/M * total at image size
  int(base + (final - base) * (i+1)/M); RandAugment magnitude and mixup/cutmix alpha follow
  linspace(min, max, M)[i]; dropout stays at its maximum (the official code computes a schedule but
  never applies it).
- "paper" (Algorithm 1 / Table 6): every value, dropout included, goes linearly from min to max with
  i/(M-1), so the first stage trains at the minimum size.
"""

import dataclasses

# Paper Table 6: (min, max) of image size, RandAugment magnitude, mixup alpha and dropout.
PAPER_TABLE6 = {
    "efficientnetv2-s": {"image_size": (128, 300), "randaug": (5, 15), "mixup": (0, 0), "dropout": (0.1, 0.3)},
    "efficientnetv2-m": {"image_size": (128, 380), "randaug": (5, 20), "mixup": (0, 0.2), "dropout": (0.1, 0.4)},
    "efficientnetv2-l": {"image_size": (128, 380), "randaug": (5, 25), "mixup": (0, 0.4), "dropout": (0.1, 0.5)},
}
RULES = ("official", "paper")


@dataclasses.dataclass(frozen=True)
class Stage:
  """One stage: steps [start_step, end_step) and the values it trains with."""
  index: int
  start_step: int
  end_step: int
  image_size: int
  dropout_rate: float
  randaug_magnitude: float
  mixup_alpha: float
  cutmix_alpha: float


def _lerp(low, high, fraction):
  return low + (high - low) * fraction


@dataclasses.dataclass(frozen=True)
class ProgressiveSchedule:
  """The stages of a run. Ranges are (min, max); num_stages <= 1 trains one stage at the max values.

  Attributes:
    total_steps: steps of the whole run.
    num_stages: M, the number of stages (official default 4).
    image_size: (base, final) train image size; official base 128.
    randaug_magnitude: (min, max); official min 5.
    mixup_alpha, cutmix_alpha: (min, max); official min 0.
    dropout_rate: (min, max); the official rule uses only the max.
    rule: "official" or "paper".
  """
  total_steps: int
  num_stages: int
  image_size: tuple[int, int]
  randaug_magnitude: tuple[float, float] = (5.0, 10.0)
  mixup_alpha: tuple[float, float] = (0.0, 0.0)
  cutmix_alpha: tuple[float, float] = (0.0, 0.0)
  dropout_rate: tuple[float, float] = (0.2, 0.2)
  rule: str = "official"

  def __post_init__(self):
    if self.rule not in RULES:
      raise ValueError(f"Unknown progressive-learning rule {self.rule!r}; expected one of {RULES}.")
    if self.total_steps < max(1, self.num_stages):
      raise ValueError(f"total_steps ({self.total_steps}) must be at least the number of stages "
                       f"({self.num_stages}).")

  @property
  def stages(self):
    count = max(1, self.num_stages)
    stages, start = [], 0
    for index in range(count):
      end = int((index + 1) / count * self.total_steps)
      # Regularization goes min -> max over stages 0..M-1 in both rules; sizes differ (see module doc).
      reg = index / (count - 1) if count > 1 else 1.0
      size = reg if self.rule == "paper" else (index + 1) / count
      stages.append(Stage(
          index=index, start_step=start, end_step=end,
          image_size=int(_lerp(*self.image_size, size)),
          dropout_rate=_lerp(*self.dropout_rate, reg) if self.rule == "paper" else self.dropout_rate[1],
          randaug_magnitude=_lerp(*self.randaug_magnitude, reg),
          mixup_alpha=_lerp(*self.mixup_alpha, reg), cutmix_alpha=_lerp(*self.cutmix_alpha, reg)))
      start = end
    return stages

  def stage_at(self, step):
    """The stage that trains `step` (the last stage for steps at or past the end)."""
    for stage in self.stages:
      if step < stage.end_step:
        return stage
    return self.stages[-1]


def run_plan(config):
  """(steps per epoch, the ProgressiveSchedule) of a resolved config."""
  train, progressive, augment = config.train, config.progressive, config.augment
  steps_per_epoch = config.data.num_train_examples / train.batch_size
  total_steps = max(int(train.epochs * steps_per_epoch), train.min_steps, 1)
  # A magnitude is RandAugment's only: under another policy the history and the plot show 0, not an unused m.
  magnitudes = (augment.magnitude_min, augment.magnitude_max) if augment.policy == "randaug" else (0.0, 0.0)
  schedule = ProgressiveSchedule(
      total_steps, progressive.stages, (progressive.image_size_min, progressive.image_size_max),
      magnitudes, (0.0, config.mixing.mixup_max), (0.0, config.mixing.cutmix_max),
      (config.regularization.dropout_min, config.regularization.dropout_max), progressive.rule)
  return steps_per_epoch, schedule
