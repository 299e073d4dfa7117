"""Our runs' checkpoints read into a model, whichever engine wrote them and whichever Keras backend reads them.

Both formats hold the values the EMA averages (ema.averaged_variables: the trainable weights, then the BN
moving statistics) twice, as the model had them and as the EMA's averages:
  TensorFlow engine (tf.train.Checkpoint, ckpt-STEP): ema/_variables/I and ema/shadows/I
  JAX engine (Orbax, ckpt_STEP/): trainable, non_trainable (the BN statistics among them), shadows
Exports (TF backend) and warm starts (either engine) read them through here.
"""

import numpy as np
import tensorflow as tf

from effnetv2_tf.run_dir import checkpoint_engine
from effnetv2_tf.train.ema import averaged_variables
from effnetv2_tf.weights.official import CheckpointError

TF_KEY = "ema/{}/{}/.ATTRIBUTES/VARIABLE_VALUE"


def _tf_values(prefix, count, use_ema):
  try:
    reader = tf.train.load_checkpoint(prefix)
  except (tf.errors.OpError, ValueError) as error:
    raise CheckpointError(f"Checkpoint {prefix} cannot be read: {str(error).splitlines()[0][:200]}") from None
  keys = [TF_KEY.format("shadows" if use_ema else "_variables", index) for index in range(count + 1)]
  if not all(reader.has_tensor(key) for key in keys[:count]) or reader.has_tensor(keys[count]):
    raise CheckpointError(f"Checkpoint {prefix} holds another number of weights than the model's {count}.")
  return [reader.get_tensor(key) for key in keys[:count]]


def _orbax_values(folder, count, use_ema):
  import jax
  from effnetv2_tf.train import orbax_steps
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])  # whatever devices wrote it
  try:
    arrays = orbax_steps.restore(folder, lambda saved: jax.tree.map(
        lambda meta: jax.ShapeDtypeStruct(meta.shape, meta.dtype, sharding=device), saved))
  except (ValueError, KeyError, FileNotFoundError) as error:
    raise CheckpointError(f"Checkpoint {folder} cannot be read: {str(error).splitlines()[0][:200]}") from None
  # The non-trainable floats are the BN statistics (the others: dropout's and stochastic depth's RNG states, which
  # a model built without them lacks).
  statistics = [array for array in arrays["non_trainable"] if np.issubdtype(array.dtype, np.floating)]
  if len(arrays["trainable"]) + len(statistics) != count or len(arrays["shadows"]) != count:
    raise CheckpointError(f"Checkpoint {folder} holds another number of weights than the model's {count}.")
  return [np.asarray(array) for array in (arrays["shadows"] if use_ema else arrays["trainable"] + statistics)]


def load_averaged_values(path, model, use_ema=True):
  """Sets `model`'s averaged variables (weights and BN statistics) from our run's checkpoint `path` (a TF prefix or
  an Orbax step folder): the EMA's averages by default, else the raw values. Raises CheckpointError when the
  checkpoint cannot be read or another model's values are in it."""
  variables = averaged_variables(model)
  if checkpoint_engine(path) == "jax":
    values = _orbax_values(path, len(variables), use_ema)
  else:
    values = _tf_values(path, len(variables), use_ema)
  for variable, value in zip(variables, values):
    if tuple(variable.shape) != value.shape:
      raise CheckpointError(f"Checkpoint {path} does not fit {model.name}: {variable.path} is "
                            f"{tuple(variable.shape)} in the model, {value.shape} in the checkpoint.")
  for variable, value in zip(variables, values):
    variable.assign(value.astype(variable.dtype))
