"""EfficientNet V1/V2 models as Keras 3 layers."""

from effnetv2_tf.model.conv_bn_act import ConvBNAct
from effnetv2_tf.model.efficientnet import (MODEL_CONFIG_KEYS, create_backbone, create_model, feature_endpoints,
                                           model_from_config, set_dropout_rate, set_survival_prob)
from effnetv2_tf.model.mbconv import FusedMBConv, MBConv
from effnetv2_tf.model.scheduled_dropout import ScheduledDropout
from effnetv2_tf.specs import MODEL_SPECS, ModelSpec, get_model_spec
from effnetv2_tf.model.squeeze_excite import SqueezeExcite
from effnetv2_tf.model.stochastic_depth import StochasticDepth

__all__ = ["ConvBNAct", "FusedMBConv", "MBConv", "MODEL_CONFIG_KEYS", "MODEL_SPECS", "ModelSpec", "ScheduledDropout",
           "SqueezeExcite", "StochasticDepth", "create_backbone", "create_model", "feature_endpoints", "get_model_spec",
           "model_from_config", "set_dropout_rate", "set_survival_prob"]
