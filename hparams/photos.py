"""photos-{b0,b1,b2,b3,s,m,l,xl}: the recipe for a folder of your own photos converted by
effnetv2_tf.data.convert (train-*, val-*): thousands of images, minutes to hours on one GPU or the CPU.

Sized from the data and the run rather than for ImageNet: hparams.from_data and the rules below (which
hparams.resolve applies) fill the values left None here:
- class and example counts from the converter's dataset.json; train and eval at the model's sizes, however
  small the photos, but at most 4x their median shorter side, the first stage at half;
- progressive learning by the paper's rule, 3 stages with weak regularization early (RandAugment 2 -> 8;
  crops of 25-100% of the image: small sets cannot spare smaller ones), no mixup; dropout stays at the
  model's rate (a new rate retraces the step, 15-40 s a stage on the CPU);
- a run of fewer than SHORT_RUN_EPOCHS (minutes to an hour on a CPU) trains in one stage at SHORT_RUN_SIZE of the
  final size, still evaluated at the eval size, without RandAugment, dropout or stochastic depth (crops and flips
  stay): a few epochs underfit, so more of them beat more pixels, and regularization only pays once a model can
  overfit; setting progressive.stages yourself keeps your stages, size, augmentation and regularization;
- residual blocks start as the identity (their last batch norm's scale at 0, model.zero_init_residual): a deep
  network from scratch trains as a shallow one first, which a short run cannot wait out;
- Adam with cosine decay (lr 1e-3 from scratch, at any batch), batch 32 (a run of minutes is short of updates,
  not of images a step), warm-up a twentieth of the run, an EMA whose horizon is a tenth of the run's steps,
  label smoothing 0.1; one eval, at the end (an eval between stages costs as much as a short stage;
  eval.between_stages=true for them);
- with train.ft_init_ckpt (an official checkpoint or one of our runs) the same set fine-tunes: one stage at
  the final size and a tenth of the learning rate;
- train.time_budget (minutes) sets the epochs from the step time measured when the run starts.
Each choice was measured: docs/benchmarks.md ("What helped", "What was tried and did not help").
"""

import ml_collections

from effnetv2_tf.specs import get_model_spec
from effnetv2_tf.hparams import base


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


# Runs from scratch shorter than this train in one stage without regularization (measured: docs/benchmarks.md).
SHORT_RUN_EPOCHS = 30
# ...and at this fraction of the final size (B0: 160 px instead of 192; measured: docs/benchmarks.md).
SHORT_RUN_SIZE = 5 / 6


def budget_start(recipe):
  """The recipe a run with train.time_budget builds its model and times its step from, before the budget sets
  its epochs: at least SHORT_RUN_EPOCHS long, so the model has the stochastic depth any fitted plan may use."""
  recipe = ml_collections.ConfigDict(recipe.to_dict())
  recipe.train.epochs = max(recipe.train.epochs, SHORT_RUN_EPOCHS)
  return recipe


# plan_by_length and fill_from_run are steps of hparams.resolve, on the copy it builds: `fill(node, key, value)`
# sets what is still None.


def plan_by_length(config, fill):
  """The stages, their size and the regularization a run's length decides, where the set leaves the stages
  None (the photos-* sets): 3 stages, or for a short run from scratch one at 5/6 of the final size without
  augmentation, dropout or stochastic depth; pretrained weights train at the final size throughout."""
  if config.progressive.stages is None:
    short = _short_run(config)
    config.progressive.stages = 1 if config.train.ft_init_ckpt or short else 3
    if short:
      config.progressive.image_size_max = _smaller_size(config.progressive.image_size_max, SHORT_RUN_SIZE)
      config.augment.policy = "none"
      fill(config.regularization, "dropout_max", 0.0)
      fill(config.regularization, "survival_prob", 1.0)
  fill(config.regularization, "survival_prob", base.SURVIVAL_PROB)


def _short_run(config):
  return config.train.epochs < SHORT_RUN_EPOCHS and not config.train.ft_init_ckpt


def short_run_note(recipe, config):
  """Why a short run of `recipe` (resolved: `config`) trains below the size the data chose, or None."""
  final = recipe.progressive.image_size_max or get_model_spec(config.model.name).train_size
  size = config.progressive.image_size_max
  if recipe.progressive.stages is not None or not _short_run(config) or size == final:
    return None
  return (f"progressive.image_size_max {size}, not {final}: a run of {config.train.epochs:.3g} epochs from scratch "
          f"(under {SHORT_RUN_EPOCHS}) trains one stage at 5/6 of the size, without RandAugment, dropout or stochastic "
          f"depth, and evaluates at {config.eval.image_size}; set progressive.stages to choose the stages and sizes")


def _smaller_size(size, fraction):
  """`fraction` of an image size, a multiple of 16, but not below 64 px (photos smaller than that keep theirs)."""
  return max(int(size * fraction) // 16 * 16, min(size, 64))


def fill_from_run(config, fill):
  """The values a run's own size decides, where the set leaves them None (the photos-* sets)."""
  progressive, train = config.progressive, config.train
  fine_tuning = bool(train.ft_init_ckpt)
  fill(progressive, "image_size_min", _smaller_size(progressive.image_size_max, 1 / 2))
  fill(config.regularization, "dropout_min", config.regularization.dropout_max)  # a new rate retraces the step
  fill(train, "lr_base", (1e-4 if fine_tuning else 1e-3) * 256 / max(train.batch_size, 1))  # Adam: 1e-3 at any batch
  fill(train, "warmup_epochs", train.epochs / 20)
  steps = max(train.epochs * config.data.num_train_examples / max(train.batch_size, 1), train.min_steps)
  fill(train, "ema_decay", min(0.9999, round(1 - 1 / max(100, steps / 10), 6)))  # averages the last tenth
