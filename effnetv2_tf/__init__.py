"""effnetv2_tf: EfficientNetV2 for TensorFlow 2 / Keras 3 (models, data, progressive training, export)."""

__version__ = "0.2.0"
