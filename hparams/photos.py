"""photos-{b0,b1,b2,b3,s,m,l,xl}: the recipe for a folder of your own photos converted by
effnetv2_tf.data.convert (train-*, val-*): thousands of images, minutes to hours on one GPU or the CPU.

Sized from the data and the run rather than for ImageNet (hparams.resolve and effnetv2_tf.train.run_data
fill the values left None here):
- class and example counts from the converter's dataset.json; train and eval at the photos' own size (their
  median shorter side, at most the model's sizes), the first stage at half of it;
- progressive learning by the paper's rule, 3 stages with weak regularization early (RandAugment 2 -> 8;
  crops of 25-100% of the image: small sets cannot spare smaller ones), no mixup; dropout stays at the
  model's rate (a new rate retraces the step, 15-40 s a stage on the CPU);
- a run of fewer than 10 epochs (hparams.SHORT_RUN_EPOCHS; minutes on a CPU) trains in one stage at 5/6 of
  the final size (hparams.SHORT_RUN_SIZE; B0 160 px instead of 192, still evaluated at 224) without
  RandAugment, dropout or stochastic depth (crops and flips stay): a few epochs underfit, so more of them
  beat more pixels, and regularization only pays once a model can overfit (10 minutes of B0 on imagenette,
  2 seeds: 0.41 and 0.38 top-1 with the model's dropout and stochastic depth, 0.52 and 0.47 without);
  setting progressive.stages yourself keeps your stages, size, augmentation and regularization;
- residual blocks start as the identity (their last batch norm's scale at 0, model.zero_init_residual):
  a deep network from scratch trains as a shallow one first, which a short run cannot wait out (10 minutes
  of B0, seeds 0, 1, 2: imagenette 0.617, 0.631, 0.614 against 0.538, 0.529, 0.545; flowers 0.685, 0.728,
  0.739 against 0.647, 0.671, 0.686);
- Adam with cosine decay (lr 1e-3 from scratch, at any batch), batch 32 (a run of minutes is short of updates,
  not of images a step: 10 minutes of B0 at 192 px, 0.39 top-1 at 32 against 0.36 at 64), warm-up a twentieth
  of the run, an EMA whose horizon is a tenth of the run's steps, label smoothing 0.1; one eval, at the end (an
  eval between stages costs as much as a short stage; eval.between_stages=true for them);
- with train.ft_init_ckpt (an official checkpoint or one of our runs) the same set fine-tunes: one stage at
  the final size and a tenth of the learning rate;
- train.time_budget (minutes) sets the epochs from the step time measured when the run starts.
"""

from hparams import base


def photos(model_name):
  config = base.get_config()
  config.model.name = model_name
  config.model.zero_init_residual = True  # residual blocks start as the identity: see above
  config.model.num_classes = None  # from the converter's dataset.json (or give them)
  config.data.num_train_examples = None
  config.data.train_files = "train-*"
  config.data.eval_files = "val-*"
  config.data.image_size_from_data = True
  config.progressive.stages = None  # 3, or 1 for a short run (then without RandAugment) and when fine-tuning
  config.progressive.rule = "paper"
  config.progressive.image_size_min = None  # half the last stage's size
  config.augment.policy = "randaug"
  config.augment.magnitude_min = 2.0
  config.augment.magnitude_max = 8.0
  config.augment.crop_area_min = 0.25
  config.mixing.mixup_max = 0.0
  config.mixing.cutmix_max = 0.0
  config.regularization.dropout_min = None  # the model's rate throughout: a new rate retraces the step
  config.regularization.survival_prob = None  # 0.8, or 1.0 (none) for a short run
  config.train.batch_size = 32
  config.train.epochs = 30.0
  config.train.optimizer = "adam"
  config.train.lr_base = None  # Adam's 1e-3 at any batch (0.008 per 256 at 32), a tenth when fine-tuning
  config.train.lr_schedule = "cosine"
  config.train.warmup_epochs = None
  config.train.ema_decay = None
  config.eval.batch_size = 64
  config.eval.between_stages = False
  config.runtime.checkpoint_steps = 500
  return config
