"""Bringing weights in: official automl checkpoints and keras.applications models."""
