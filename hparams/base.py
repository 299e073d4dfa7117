"""The base config every set starts from: the official ImageNet recipe (google/automl efficientnetv2).

Grouped by concept: model (what is built), data (what is read), progressive (the stages and their image
sizes), augment, mixing and regularization (each a range a stage moves along), train (optimization),
eval, runtime. Ranges are written *_min and *_max; stage i of M takes its value from them by the
progressive rule (effnetv2_tf.train.schedule).

None means "the model's own value" (specs.ModelSpec): image sizes, dropout, augmentation policy,
RandAugment and mixup maxima; for the values a run's size decides (the photos-* sets), the value for the
run (hparams.resolve lists the rules). hparams.resolve() fills them in; the resolved config is what a run
writes to model_dir/config.yaml.
"""

import ml_collections

SURVIVAL_PROB = 0.8  # stochastic depth: the last block keeps its branch with this probability

# Keys that must be at least 1 (counts, sizes, cadences), and the allowed values of the named choices.
POSITIVE = ("model.num_classes", "data.num_train_examples", "data.shuffle_buffer", "train.batch_size",
            "progressive.image_size_max", "progressive.image_size_min", "eval.batch_size", "eval.image_size",
            "runtime.steps_per_loop", "runtime.checkpoint_steps", "runtime.keep_checkpoints")
# Keys whose values lie in a range: (the range in words, the test). A value outside trains as if normal, or diverges.
RANGES = {
    "train.lr_base": ("more than 0", lambda v: v > 0),
    "train.weight_decay": ("0 or more", lambda v: v >= 0),
    "train.gradient_clip": ("0 (off) or more", lambda v: v >= 0),
    "train.ema_decay": ("from 0 up to, not including, 1 (0.9999 officially)", lambda v: 0 <= v < 1),
    "train.label_smoothing": ("from 0 up to, not including, 1 (0.1 officially)", lambda v: 0 <= v < 1),
    "regularization.dropout_min": ("from 0 up to, not including, 1", lambda v: 0 <= v < 1),
    "regularization.dropout_max": ("from 0 up to, not including, 1", lambda v: 0 <= v < 1),
    "regularization.survival_prob": ("more than 0, at most 1 (1 is off)", lambda v: 0 < v <= 1),
    "mixing.mixup_max": ("0 (off) or more", lambda v: v >= 0),
    "mixing.cutmix_max": ("0 (off) or more", lambda v: v >= 0),
    "augment.crop_area_min": ("more than 0, at most 1", lambda v: 0 < v <= 1),
}
CHOICES = {"data.source": ("tfrecord", "tfds"), "augment.policy": ("randaug", "autoaug", "none"),
           "progressive.rule": ("official", "paper"), "train.loss_type": ("softmax", "sigmoid"),
           "runtime.mixed_precision": ("auto", "bfloat16", "float16", "float32"),
           "runtime.jit_compile": ("auto", "true", "false"), "runtime.engine": ("tf", "jax")}


def get_config():
  config = ml_collections.ConfigDict()

  config.model = ml_collections.ConfigDict()
  config.model.name = "efficientnetv2-s"
  config.model.width = None  # override the spec's width/depth coefficients (tiny demo/test models)
  config.model.depth = None
  config.model.num_classes = 1000
  config.model.bn_momentum = 0.9
  config.model.bn_epsilon = 1e-3
  config.model.synchronized_bn = True  # cross-replica statistics, as the official TPU batch norm
  config.model.zero_init_residual = False  # True: residual blocks start as the identity (officially not)

  config.data = ml_collections.ConfigDict()
  config.data.source = "tfrecord"  # "tfrecord" (files under --data_dir) or "tfds"
  config.data.train_files = "train-*"
  config.data.eval_files = "validation-*"
  config.data.label_offset = 1  # ImageNet-layout records are 1-based
  config.data.tfds_name = ""
  config.data.train_split = "train"
  config.data.eval_split = "validation"
  config.data.num_train_examples = 1_281_167
  # Train and eval at the model's sizes, or at most 4x the photos' (dataset.json's median shorter side), where
  # progressive.image_size_max and eval.image_size are None (hparams.from_data).
  config.data.image_size_from_data = False
  config.data.cache = False
  config.data.shuffle_buffer = 16_384

  config.progressive = ml_collections.ConfigDict()
  config.progressive.stages = 4  # 0 or 1: one stage at the max values
  config.progressive.rule = "official"  # or "paper" (Table 6: dropout scheduled too)
  config.progressive.image_size_min = 128
  config.progressive.image_size_max = None  # the last stage's train size

  config.augment = ml_collections.ConfigDict()
  config.augment.policy = None  # "randaug", "autoaug" or "none"; None: the model's recipe
  config.augment.randaug_layers = 2
  config.augment.magnitude_min = 5.0  # RandAugment magnitude
  config.augment.magnitude_max = None
  config.augment.crop_area_min = 0.05  # random crops cover 5%-100% of the image

  config.mixing = ml_collections.ConfigDict()  # alpha of the Beta distributions; 0 is off (min is 0)
  config.mixing.mixup_max = None
  config.mixing.cutmix_max = None

  config.regularization = ml_collections.ConfigDict()
  config.regularization.dropout_min = 0.1  # the paper rule's first stage; the official rule uses only the max
  config.regularization.dropout_max = None
  config.regularization.survival_prob = SURVIVAL_PROB

  config.train = ml_collections.ConfigDict()
  config.train.batch_size = 4096
  config.train.epochs = 350.0
  config.train.time_budget = 0.0  # minutes of training: > 0 sets epochs from the step time measured at the start
  config.train.min_steps = 0
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
  config.train.ft_init_ckpt = ""  # fine-tune from: an official checkpoint, one of our model dirs, a preset folder
  config.train.ft_init_ema = True  # start from its EMA weights

  config.eval = ml_collections.ConfigDict()
  config.eval.batch_size = 256
  config.eval.image_size = None
  config.eval.between_stages = True  # --mode=train_and_eval: an eval after each stage (always one at the end)

  config.runtime = ml_collections.ConfigDict()
  config.runtime.engine = "tf"  # what trains the run: "tf" (TensorFlow) or "jax" (Keras 3 on JAX); main's --engine
  config.runtime.steps_per_loop = 100  # steps per tf.function call (a TPU host loop), at most
  # ...and at most this many seconds of steps at the stage's pace (the first loops of a stage are one step),
  # so that progress, logs and a stop signal are never further behind; 0: steps_per_loop alone.
  config.runtime.progress_seconds = 5.0
  # After a stop signal, the longest wait for the end of the host loop (a run blocked in its data never gets
  # there): then the run ends without a checkpoint, saying where the last one is; 0: no bound.
  config.runtime.stop_seconds = 60.0
  config.runtime.mixed_precision = "auto"  # auto: bfloat16 on TPU, float16 on GPU (JAX: bfloat16), float32 on CPU
  config.runtime.jit_compile = "auto"  # auto: on for TPU and GPU, off on CPU (XLA is 4-5x slower there)
  config.runtime.checkpoint_steps = 1000
  config.runtime.keep_checkpoints = 5
  config.runtime.keep_checkpoint_every_hours = 5.0
  config.runtime.deterministic = False  # op determinism: bit-exact resume at some speed cost
  return config
