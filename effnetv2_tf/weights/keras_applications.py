"""Copies weights between keras.applications EfficientNet(V2) models and ours, by a naming rule.

keras.applications names layers block{stage}{letter}_{role} (block4a_se_reduce, ...), stem_conv, top_conv
and predictions. Our blocks expose the same roles as attributes, so one rule covers every variant.
Ours takes normalized input: build a V2 keras.applications model with include_preprocessing=False; a V1
one always normalizes inside (Rescaling + Normalization layers), and those layers are not copied.
"""

import string

import keras

from effnetv2_tf import specs
from effnetv2_tf.model.efficientnet import blocks_of

# Our name -> the keras.applications constructor of the same variant (keras has no V2-XL).
KERAS_CONSTRUCTORS = {
    **{f"efficientnetv2-{v}": f"EfficientNetV2{v.upper()}" for v in ("b0", "b1", "b2", "b3", "s", "m", "l")},
    **{f"efficientnet-b{i}": f"EfficientNetB{i}" for i in range(8)},
}

_BLOCK_ROLES = {"expand_conv": "expand_conv", "expand_bn": "expand_bn", "depthwise_bn": "bn",
                "project_conv": "project_conv", "project_bn": "project_bn"}


def _layer_pairs(model, spec):
  """Yields (our leaf layer, keras.applications layer name) for every layer with weights."""
  depthwise_name = "dwconv2" if spec.family == "v2" else "dwconv"
  yield model.get_layer("stem").conv, "stem_conv"
  yield model.get_layer("stem").bn, "stem_bn"
  blocks = iter(blocks_of(model))
  for stage_index, stage in enumerate(map(specs.decode_stage, spec.stages), start=1):
    for repeat in range(specs.round_repeats(stage.repeats, spec.depth)):
      block = next(blocks)
      prefix = f"block{stage_index}{string.ascii_lowercase[repeat]}_"
      for attribute, role in _BLOCK_ROLES.items():
        if getattr(block, attribute, None) is not None:
          yield getattr(block, attribute), prefix + role
      if getattr(block, "depthwise_conv", None) is not None:
        yield block.depthwise_conv, prefix + depthwise_name
      if block.se is not None:
        yield block.se.reduce_conv, prefix + "se_reduce"
        yield block.se.expand_conv, prefix + "se_expand"
  yield model.get_layer("head").conv, "top_conv"
  yield model.get_layer("head").bn, "top_bn"
  if any(layer.name == "predictions" for layer in model.layers):
    yield model.get_layer("predictions"), "predictions"


def copy_from_keras_applications(model, keras_model, spec=None):
  """Sets `model`'s weights from a keras.applications model of the same variant.

  Args:
    model: one of our models (create_model); `spec` defaults to the spec named like the model.
    keras_model: e.g. keras.applications.EfficientNetV2B0(include_preprocessing=False, ...).
    spec: the ModelSpec `model` was built from, when its name is not a spec name.

  Raises:
    ValueError: naming the first layer whose counterpart is missing or has other shapes.
  """
  spec = spec or specs.get_model_spec(model.name)
  assignments = []
  for layer, keras_name in _layer_pairs(model, spec):
    try:
      source = keras_model.get_layer(keras_name)
    except ValueError:
      raise ValueError(f"{keras_model.name} has no layer {keras_name!r} for our {layer.path}: "
                       f"is it the same variant as {model.name}?") from None
    values = source.get_weights()
    ours = [tuple(v.shape) for v in layer.weights]
    theirs = [tuple(v.shape) for v in values]
    if ours != theirs:
      raise ValueError(f"Shape mismatch for {layer.path} <- {keras_name}: ours {ours}, theirs {theirs}.")
    assignments.append((layer, keras_name, values))
  used = {keras_name for _, keras_name, _ in assignments}
  # keras' V1 models normalize their input with a Normalization layer; ours take normalized input.
  unused = [layer.name for layer in keras_model.layers if layer.weights and layer.name not in used
            and not isinstance(layer, keras.layers.Normalization)]
  if unused:
    raise ValueError(f"{keras_model.name} has layers {model.name} lacks ({', '.join(unused[:5])}, ...): "
                     "it is another variant. Nothing was copied.")
  for layer, _, values in assignments:  # only after every check passed: never a half-loaded model
    layer.set_weights(values)


def load_keras_applications_weights(model, weights_path, spec=None):
  """Loads a keras.applications weights file from disk (e.g. efficientnetv2-s.h5) into `model`.

  The file is read by the keras.applications model of the same variant, then copied over by the naming
  rule; with a classifier, its class count must match the file's.
  """
  spec = spec or specs.get_model_spec(model.name)
  if spec.name not in KERAS_CONSTRUCTORS:
    raise ValueError(f"keras.applications has no {spec.name}; it has {', '.join(KERAS_CONSTRUCTORS)}.")
  include_top = any(layer.name == "predictions" for layer in model.layers)
  kwargs = {"weights": weights_path, "include_top": include_top}
  if include_top:
    kwargs.update(classes=model.get_layer("predictions").units, classifier_activation=None,
                  input_shape=(spec.eval_size, spec.eval_size, 3))
  else:
    kwargs["input_shape"] = (None, None, 3)
  constructor = getattr(keras.applications, KERAS_CONSTRUCTORS[spec.name])
  try:
    reference = constructor(**kwargs)
  except (ValueError, OSError) as error:
    raise ValueError(f"Could not read {weights_path} as {KERAS_CONSTRUCTORS[spec.name]} weights "
                     f"(include_top={include_top}): {str(error)[:300]}") from None
  copy_from_keras_applications(model, reference, spec)
