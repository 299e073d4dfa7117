"""The Keras-3-on-JAX engine: JaxEngine (engine.py) trains a run's JaxState (state.py: the recipe as arrays, a step
compiled with jax.jit over every device, Orbax checkpoints) on the devices of runtime.py, across the processes that
processes.py joins; spec.py answers the registry's questions, doctor.py the doctor's."""
