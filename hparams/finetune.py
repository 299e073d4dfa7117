"""The official fine-tuning recipes (ImageNet, CIFAR-10/100, Flowers, Cars): batch 512, 15 epochs and at
least 10,000 steps, constant lr 0.0005 per 256 after 1 warm-up epoch, EMA 0.9996, no stages, flip and
cutout only, and train size = the model's eval size.

photos-ft-*: the same recipe for a folder of your own photos converted by effnetv2_tf.data.convert
(train-*, val-*), without the 10,000-step floor (sized for thousands of images, not ImageNet) and at batch
64 (one GPU or the CPU)."""

from effnetv2_tf.hparams import base

# name: (TFDS name, train split, eval split, classes, train examples)
DATASETS = {
    "imagenet": ("imagenet2012", "train", "validation", 1000, 1_281_167),
    "cifar10": ("cifar10", "train", "test", 10, 50_000),
    "cifar100": ("cifar100", "train", "test", 100, 50_000),
    "flowers": ("oxford_flowers102", "train+validation", "test", 102, 2_040),
    "tf-flowers": ("tf_flowers", "train[:80%]", "train[80%:]", 5, 2_936),
    "cars": ("cars196", "train", "test", 196, 8_144),
}


def finetune(dataset, model_name="efficientnetv2-s"):
  tfds_name, train_split, eval_split, num_classes, num_train = DATASETS[dataset]
  config = _recipe(model_name)
  config.model.num_classes = num_classes
  config.data.source = "tfds"
  config.data.tfds_name = tfds_name
  config.data.train_split = train_split
  config.data.eval_split = eval_split
  config.data.label_offset = 0
  config.data.num_train_examples = num_train
  return config


def photos(model_name):
  config = _recipe(model_name)
  config.model.num_classes = None  # yours: from the converter's dataset.json (or give them)
  config.data.num_train_examples = None
  config.data.train_files = "train-*"
  config.data.eval_files = "val-*"
  config.train.batch_size = 64
  config.train.min_steps = 0
  return config


def _recipe(model_name):
  config = base.get_config()
  config.model.name = model_name
  config.regularization.dropout_max = 1e-6
  config.augment.policy = "none"  # the 'ft' recipe: flip (always on) and cutout
  config.train.batch_size = 512
  config.train.epochs = 15.0
  config.train.min_steps = 10_000
  config.train.lr_base = 0.0005
  config.train.lr_schedule = "constant"
  config.train.warmup_epochs = 1.0
  config.train.ema_decay = 0.9996
  config.progressive.stages = 0
  return config

