"""Builds EfficientNet V1/V2 models from the spec table, in the keras.applications style."""

import dataclasses

import keras

from effnetv2_tf import specs
from effnetv2_tf.model import initializers
from effnetv2_tf.model.conv_bn_act import ConvBNAct
from effnetv2_tf.model.mbconv import FusedMBConv, MBConv
from effnetv2_tf.model.scheduled_dropout import ScheduledDropout


def block_configs(spec):
  """Yields the keyword arguments of every block, in order, with width/depth scaling applied."""
  for stage in map(specs.decode_stage, spec.stages):
    input_filters = specs.round_filters(stage.input_filters, spec.width, spec.family)
    output_filters = specs.round_filters(stage.output_filters, spec.width, spec.family)
    for repeat in range(specs.round_repeats(stage.repeats, spec.depth)):
      yield {"fused": stage.fused,
             "input_filters": input_filters if repeat == 0 else output_filters,
             "output_filters": output_filters, "kernel_size": stage.kernel_size,
             "strides": stage.strides if repeat == 0 else 1, "expand_ratio": stage.expand_ratio,
             "se_ratio": stage.se_ratio}


def resolve_spec(model, width=None, depth=None):
  """A ModelSpec from a name or a spec, with optional width/depth coefficient overrides."""
  spec = model if isinstance(model, specs.ModelSpec) else specs.get_model_spec(model)
  overrides = {key: value for key, value in (("width", width), ("depth", depth)) if value is not None}
  return dataclasses.replace(spec, **overrides) if overrides else spec


def create_model(model="efficientnetv2-s", include_top=True, num_classes=None, input_shape=(None, None, 3),
                 pooling=None, classifier_activation="softmax", dropout_rate=None, survival_prob=0.8,
                 width=None, depth=None, activation="silu", bn_momentum=0.9, bn_epsilon=1e-3,
                 synchronized_bn=False, zero_init_residual=False, name=None, weights=None):
  """Builds an EfficientNet V2 (or V1) Keras model.

  Inputs are normalized images (see effnetv2_tf.data for each family's normalization); spatial dims may
  be None so that one model serves every progressive-learning image size.

  Args:
    model: a name from specs.MODEL_SPECS ("efficientnetv2-s", "efficientnet-b0", ...) or a ModelSpec.
    include_top: whether to end with pooling, dropout and the classifier.
    num_classes: classifier width when include_top; defaults to the class count of `weights` (1000; 21843 for
      imagenet21k), else 1000. Another count than the weights' leaves a new classifier as initialised.
    input_shape: (height, width, channels); height and width may be None.
    pooling: without the top, None returns the head's feature map, "avg" or "max" a pooled vector.
    classifier_activation: activation of the classifier; None returns logits.
    dropout_rate: dropout before the classifier; defaults to the model's official rate. The layer
      (`top_dropout`) is there even at rate 0, so a training schedule can change its rate
      (set_dropout_rate).
    survival_prob: stochastic-depth survival probability of the last block; block i of N keeps
      1 - (1 - survival_prob) * i / N. 1.0 disables stochastic depth.
    width, depth: override the spec's width/depth coefficients (tiny variants for tests and demos).
    activation, bn_momentum, bn_epsilon: official defaults SiLU, 0.9 (Keras semantics), 1e-3.
    synchronized_bn: batch statistics over all replicas of a tf.distribute strategy (the official
      TPU batch norm); no effect on one device.
    zero_init_residual: residual blocks start as the identity (their last BN's scale starts at 0, not 1
      as officially): faster early training from scratch; no effect on loaded weights.
    name: the Keras model name; defaults to the spec's name, which prefixes official checkpoint names.
    weights: None (initialised), "imagenet", "imagenet21k" or "imagenet21k-ft1k" (the official checkpoint,
      downloaded once into the Keras cache: effnetv2_tf.weights.pretrained), or the folder of an official
      checkpoint; its EMA weights are loaded.

  Returns:
    A functional keras.Model.
  """
  spec = resolve_spec(model, width, depth)
  checkpoint = _official_checkpoint(spec, weights)
  if num_classes is None:
    num_classes = _num_classes_of(checkpoint, spec) or 1000
  if len(input_shape) != 3 or input_shape[-1] is None:
    raise ValueError(f"input_shape must be (height, width, channels) with known channels, got {input_shape}.")
  if pooling not in (None, "avg", "max"):
    raise ValueError(f"pooling must be None, 'avg' or 'max', got {pooling!r}.")
  dropout_rate = spec.dropout_rate if dropout_rate is None else dropout_rate
  norm = {"activation": activation, "bn_momentum": bn_momentum, "bn_epsilon": bn_epsilon,
          "synchronized_bn": synchronized_bn}

  inputs = keras.Input(shape=input_shape, name="images")
  first_stage = specs.decode_stage(spec.stages[0])
  x = ConvBNAct(specs.round_filters(first_stage.input_filters, spec.width, spec.family), 3, 2, name="stem",
                **norm)(inputs)
  configs = list(block_configs(spec))
  for index, config in enumerate(configs):
    block_class = FusedMBConv if config.pop("fused") else MBConv
    x = block_class(**config, survival_prob=_block_survival(survival_prob, index, len(configs)),
                    name=f"blocks_{index}", zero_init_residual=zero_init_residual, **norm)(x)
  x = ConvBNAct(specs.round_filters(specs.FEATURE_SIZE, spec.width, spec.family), 1, name="head", **norm)(x)

  if include_top:
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = ScheduledDropout(dropout_rate, name="top_dropout")(x)
    x = keras.layers.Dense(num_classes, activation=classifier_activation,
                           kernel_initializer=initializers.dense_kernel_initializer(), name="predictions")(x)
  elif pooling == "avg":
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
  elif pooling == "max":
    x = keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
  model = keras.Model(inputs, x, name=name or spec.name)
  # Checked at the model's door, so a wrong channel count names the model, not an inner conv.
  model.input_spec = keras.layers.InputSpec(ndim=4, axes={-1: input_shape[-1]})
  if checkpoint:
    from effnetv2_tf.weights.official import load_official_checkpoint
    load_official_checkpoint(model, checkpoint, replace_mismatched_classifier=True, model_name=spec.name)
  return model


def _official_checkpoint(spec, weights):
  """The checkpoint folder `weights` names (a pretraining is downloaded once), or None."""
  if weights is None:
    return None
  from effnetv2_tf.weights.pretrained import checkpoint_folder
  return checkpoint_folder(spec.name, weights)


def _num_classes_of(checkpoint, spec):
  if checkpoint is None:
    return None
  from effnetv2_tf.weights.official import official_num_classes
  return official_num_classes(checkpoint, spec.name)


def blocks_of(model):
  """The model's MBConv / Fused-MBConv layers in order."""
  return [layer for layer in model.layers if isinstance(layer, (MBConv, FusedMBConv))]


def feature_endpoints(model):
  """The multi-scale features of a model as {"reduction_1": tensor, ..., "reduction_5": tensor}.

  reduction_i is the output of the last block before each stride-2 block, plus the last block (the
  official endpoints; for V2-S at 224 px: 112, 56, 28, 14 and 7 px).
  """
  blocks = blocks_of(model)
  ends = [block for block, following in zip(blocks, blocks[1:]) if following.strides == 2] + [blocks[-1]]
  return {f"reduction_{level}": block.output for level, block in enumerate(ends, start=1)}


def create_backbone(model="efficientnetv2-s", input_shape=(None, None, 3), **kwargs):
  """A model whose outputs are the feature_endpoints dict (for detection / segmentation heads)."""
  base = create_model(model, include_top=False, input_shape=input_shape, **kwargs)
  return keras.Model(base.input, feature_endpoints(base), name=base.name)


def set_dropout_rate(model, rate):
  """Sets the classifier's dropout rate of a model made by create_model (whatever rate it was built with);
  a step traced before keeps the old rate."""
  model.get_layer("top_dropout").rate = rate


def _block_survival(survival_prob, index, num_blocks):
  """Stochastic depth grows linearly with depth: block `index` of `num_blocks` keeps its branch with this."""
  return 1.0 - (1.0 - survival_prob) * index / num_blocks


def set_survival_prob(model, survival_prob):
  """Sets the stochastic depth of a model made by create_model to what `survival_prob` builds (block i of N
  keeps 1 - (1 - survival_prob) * i / N); a step traced before keeps the old one. A model built without
  stochastic depth (1.0) has no layer to take a lower value."""
  blocks = blocks_of(model)
  for index, block in enumerate(blocks):
    keep = _block_survival(survival_prob, index, len(blocks))
    if block.drop_path is not None:
      block.drop_path.survival_prob = block.survival_prob = keep
    elif block.has_residual and keep < 1.0:
      raise ValueError(f"{model.name} was built without stochastic depth and cannot take survival_prob "
                       f"{survival_prob:g}: build it with a survival_prob below 1.0.")


MODEL_CONFIG_KEYS = ("width", "depth", "bn_momentum", "bn_epsilon", "synchronized_bn", "zero_init_residual")


def model_from_config(model_config, **overrides):
  """The logits classifier a config's `model` section describes (a ConfigDict, or the dict of a run's
  config.yaml): name and num_classes, plus every key of MODEL_CONFIG_KEYS it sets. The one place where a
  config becomes a model, so that training, export and warm starts build the same one. Dropout and
  stochastic depth (the config's regularization, which creates no weights) come as `overrides`."""
  kwargs = {key: model_config[key] for key in MODEL_CONFIG_KEYS if model_config.get(key) is not None}
  kwargs.update(overrides)
  return create_model(model_config["name"], num_classes=model_config["num_classes"], classifier_activation=None,
                      **kwargs)
