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
