"""effnetv2_tf: EfficientNetV2 for TensorFlow 2 / Keras 3 (models, data, progressive training, export)."""

from effnetv2_tf.quiet_start import leave_out_banner

__version__ = "0.3.0"

leave_out_banner()  # TensorFlow's start-up banner says nothing about a run (imports nothing itself)

from effnetv2_tf.presets import from_preset  # noqa: E402  (Keras only when called)

__all__ = ["from_preset"]
