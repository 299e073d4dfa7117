"""Our runs' checkpoints read into a model, whichever engine wrote them and whichever Keras backend reads them.

Both checkpoint formats (effnetv2_tf.checkpoints) hold the values the EMA averages (ema.averaged_variables: the
trainable weights, then the BN moving statistics) twice, as the model had them and as the EMA's averages. Exports
(TF backend) and warm starts (either engine) read them through here.
"""

from effnetv2_tf.checkpoints import format_of
from effnetv2_tf.weights.ema import averaged_variables
from effnetv2_tf.weights.official import CheckpointError


def load_averaged_values(path, model, use_ema=True):
  """Sets `model`'s averaged variables (weights and BN statistics) from our run's checkpoint `path` (a TF prefix or
  an Orbax step folder): the EMA's averages by default, else the raw values. Raises CheckpointError when the
  checkpoint cannot be read or another model's values are in it."""
  variables = averaged_variables(model)
  form = format_of(path)
  if form is None:
    raise CheckpointError(f"{path} is not a checkpoint of our runs (checkpoints/ckpt-STEP or ckpt_STEP).")
  try:
    values = form.averaged_values(path, len(variables), use_ema)
  except ValueError as error:
    raise CheckpointError(str(error)) from None
  for variable, value in zip(variables, values):
    if tuple(variable.shape) != value.shape:
      raise CheckpointError(f"Checkpoint {path} does not fit {model.name}: {variable.path} is "
                            f"{tuple(variable.shape)} in the model, {value.shape} in the checkpoint.")
  for variable, value in zip(variables, values):
    variable.assign(value.astype(variable.dtype))
