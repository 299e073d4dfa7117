"""Training: the progressive-learning schedule (the loop, optimizer and checkpoints come next)."""
