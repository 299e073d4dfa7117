"""The TensorFlow engine: TFEngine (engine.py) trains a run's TFState (state.py: the recipe, the EMA of ema.py, the
traced step, tf.train checkpoints) on any tf.distribute strategy, and evaluates it (evaluation.py); spec.py answers
the registry's questions, doctor.py the doctor's."""
