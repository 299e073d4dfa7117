"""A step's cost at any image size, from the seconds per step measured at one or more sizes.

On the CPU a step costs about a + b * pixels: a fixed part (per-op overhead, the optimizer and EMA updates)
and a part that grows with the image area. The time budget plans with it, and the run's time left is
estimated with it.
"""


def pace_at(paces):
  """Seconds per step at any image size, from {size: seconds per step} at one or more sizes: a + b * size**2
  through the smallest and the largest (in proportion to the pixels through one)."""
  measured = sorted(paces.items())
  (small, small_pace), (large, large_pace) = measured[0], measured[-1]
  if small == large:
    return lambda size: large_pace * (size / large) ** 2
  per_pixel = max(large_pace - small_pace, 0.0) / (large ** 2 - small ** 2)
  fixed = large_pace - per_pixel * large ** 2
  return lambda size: fixed + per_pixel * size ** 2


def scaled(timed, size, pace):
  """`timed` ({size: seconds per step}) scaled by what `pace`, measured at `size`, makes of their reading
  there: a timing of a few steps reads every size off by about the same factor (the pipeline still warming
  up, the machine's speed drifting)."""
  factor = pace / pace_at(timed)(size)
  return {timed_size: timed_pace * factor for timed_size, timed_pace in timed.items()}
