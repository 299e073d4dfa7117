"""The base config every set starts from: the official ImageNet recipe (google/automl efficientnetv2).

None means "the model's own value" (specs.ModelSpec): image sizes, dropout, augmentation, RandAugment
and mixup maxima. hparams.resolve() fills them in; the resolved config is what a run writes to
model_dir/config.yaml.
"""

import ml_collections


def get_config():
  config = ml_collections.ConfigDict()

  config.model = ml_collections.ConfigDict()
  config.model.name = "efficientnetv2-s"
  config.model.width = None  # override the spec's width/depth coefficients (tiny demo/test models)
  config.model.depth = None
  config.model.num_classes = 1000
  config.model.dropout_rate = None  # the max; the paper rule schedules dropout from dropout_min
  config.model.dropout_min = 0.1
  config.model.survival_prob = 0.8
  config.model.bn_momentum = 0.9
  config.model.bn_epsilon = 1e-3
  config.model.synchronized_bn = True  # cross-replica statistics, as the official TPU batch norm

  config.data = ml_collections.ConfigDict()
  config.data.source = "tfrecord"  # "tfrecord" (files under --data_dir) or "tfds"
  config.data.train_files = "train-*"
  config.data.eval_files = "validation-*"
  config.data.label_offset = 1  # ImageNet-layout records are 1-based
  config.data.tfds_name = ""
  config.data.train_split = "train"
  config.data.eval_split = "validation"
  config.data.num_train_examples = 1_281_167
  config.data.augment = None  # "randaug", "autoaug" or "none"; None: the model's recipe
  config.data.randaug_layers = 2
  config.data.crop_area_min = 0.05  # random crops cover 5%-100% of the image
  config.data.cache = False
  config.data.shuffle_buffer = 16_384

  config.train = ml_collections.ConfigDict()
  config.train.batch_size = 4096
  config.train.epochs = 350.0
  config.train.min_steps = 0
  config.train.image_size = None
  config.train.stages = 4
  config.train.progressive_rule = "official"  # or "paper" (Table 6: dropout scheduled too)
  config.train.base_image_size = 128
  config.train.randaug_min = 5.0
  config.train.randaug_max = None
  config.train.mixup_max = None
  config.train.cutmix_max = None
  config.train.optimizer = "rmsprop"
  config.train.lr_base = 0.016  # per 256 images: lr = lr_base * batch_size / 256
  config.train.lr_schedule = "exponential"
  config.train.lr_decay_epochs = 2.4
  config.train.lr_decay_factor = 0.97
  config.train.warmup_epochs = 5.0
  config.train.lr_min = 0.0
  config.train.weight_decay = 1e-5
  config.train.label_smoothing = 0.1
  config.train.loss_type = "softmax"
  config.train.ema_decay = 0.9999
  config.train.gradient_clip = 0.0
  config.train.seed = 0
  config.train.ft_init_ckpt = ""  # fine-tune from: an official checkpoint, or one of our model dirs
  config.train.ft_init_ema = True  # start from its EMA weights

  config.eval = ml_collections.ConfigDict()
  config.eval.batch_size = 256
  config.eval.image_size = None

  config.runtime = ml_collections.ConfigDict()
  config.runtime.steps_per_loop = 100  # steps per tf.function call (a TPU host loop)
  config.runtime.mixed_precision = "auto"  # auto: bfloat16 on TPU, float16 on GPU, float32 on CPU
  config.runtime.jit_compile = "auto"  # auto: on for TPU and GPU, off on CPU (XLA is 4-5x slower there)
  config.runtime.checkpoint_steps = 1000
  config.runtime.keep_checkpoints = 5
  config.runtime.keep_checkpoint_every_hours = 5.0
  config.runtime.deterministic = False  # op determinism: bit-exact resume at some speed cost
  return config
