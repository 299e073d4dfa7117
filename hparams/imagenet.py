"""ImageNet-1k from scratch (the official recipe) and ImageNet-21k pre-training."""

from effnetv2_tf.hparams import base


def imagenet(model_name):
  config = base.get_config()
  config.model.name = model_name
  return config


def imagenet21k(model_name):
  """60 epochs, cosine lr 0.008, 1 warm-up epoch, no smoothing or augmentation, 224 px, no stages."""
  config = imagenet(model_name)
  config.model.num_classes = 21_843
  config.regularization.dropout_max = 1e-6
  config.regularization.survival_prob = 1.0
  config.data.num_train_examples = 12_720_275
  config.data.train_files = "imagenet21k-train-*"
  config.data.eval_files = "imagenet21k-eval-*"
  config.data.label_offset = 0
  config.augment.policy = "none"
  config.train.epochs = 60.0
  config.train.lr_base = 0.008
  config.train.lr_schedule = "cosine"
  config.train.warmup_epochs = 1.0
  config.train.label_smoothing = 0.0
  config.train.loss_type = "sigmoid"  # the July 2021 21k checkpoints' multi-label loss
  config.progressive.stages = 0
  config.progressive.image_size_max = 224
  config.eval.image_size = 224
  return config
