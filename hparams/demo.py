"""The no-flag demo: a small EfficientNetV2 trained on the CPU in about two minutes, in 4 progressive
stages, on the flower photos shipped in effnetv2_tf/demo_data (CC-BY, see its README). The official
optimizer (RMSProp) at half its learning rate per 256 images, and light augmentation: 300 photos from scratch
in 560 steps underfit, and at the official rate the loss climbed above chance's during the warm-up. Held-out
top-1 on 5 classes (chance 0.2): 0.46, 0.47, 0.57 for seeds 0, 1, 2 (2026-11-30; it was 0.30-0.37 at the
official rate, RandAugment up to 6 and crops from a quarter of the photo)."""

from effnetv2_tf.hparams import base


def demo():
  config = base.get_config()
  config.model.name = "efficientnetv2-b0"
  config.model.width = 0.5
  config.model.depth = 0.5
  config.model.num_classes = 5
  config.regularization.dropout_max = 0.2
  config.regularization.survival_prob = 0.9
  config.data.train_files = "train-*"
  config.data.eval_files = "val-*"
  config.data.num_train_examples = 300
  config.augment.policy = "randaug"
  config.augment.crop_area_min = 0.5  # 5% crops of 128-px photos leave too little for a model trained from scratch
  config.train.batch_size = 32
  config.train.epochs = 60.0
  config.progressive.image_size_max = 112
  config.progressive.image_size_min = 64
  config.augment.magnitude_min = 2.0
  config.augment.magnitude_max = 4.0
  config.mixing.mixup_max = 0.0
  config.mixing.cutmix_max = 0.0
  config.train.lr_base = 0.008
  config.train.lr_schedule = "cosine"
  config.train.warmup_epochs = 2.0
  config.train.ema_decay = 0.99
  config.eval.batch_size = 100
  config.eval.image_size = 112
  config.runtime.steps_per_loop = 10
  config.runtime.checkpoint_steps = 50
  return config
