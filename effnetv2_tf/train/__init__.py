"""Training: progressive-learning schedule, optimizer, learning-rate schedule, losses, EMA and the trainer."""
