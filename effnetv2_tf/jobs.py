"""The jobs main.py dispatches: train (with an eval after each stage), plan a training run, evaluate a run's
checkpoints, export a run.

Each takes plain values (main.py turns its flags into them) and prints its lines; bad input is a ValueError or
FileNotFoundError whose one line says the fix. TensorFlow loads with this module: main.py imports it only once
the TPU runtime's variables are set (tpu/pjrt.py).
"""

import os
import pathlib
import tempfile

import ml_collections
import tensorflow as tf

from effnetv2_tf import engines, hparams
from effnetv2_tf.checkpoints import checkpoint_step, first_readable, say_unreadable
from effnetv2_tf.data.convert import convert
from effnetv2_tf.data.facts import DATASET_FILE
from effnetv2_tf.data.pipeline import train_dataset
from effnetv2_tf.export.formats import QUANTIZED
from effnetv2_tf.export.writer import export_run
from effnetv2_tf.model import get_model_spec
from effnetv2_tf.run_dir import model_identity, write_atomically
from effnetv2_tf.train.engine import CheckpointMismatchError
from effnetv2_tf.train.evaluation import accuracy_text
from effnetv2_tf.train.plan import data_speed, make_plan, planning_engine, time_stages
from effnetv2_tf.train.plan import table as plan_table
from effnetv2_tf.train.run_data import check_run_classes, data_facts, eval_examples, eval_source, train_source
from effnetv2_tf.train.schedule import run_plan
from effnetv2_tf.train.time_budget import fit_to_budget
from effnetv2_tf.train.trainer import Trainer, stage_preprocessing
from effnetv2_tf.train.warm_start import source_run_model
from effnetv2_tf.weights import pretrained

DEMO_DATA = pathlib.Path(__file__).resolve().parent / "demo_data"
DEMO_RECORDS = "demo_records"  # the demo's photos as TFRecords, inside its (local) model_dir


def demo_records(model_dir, announce=True):
  """The shipped demo photos as TFRecords, converted once (into the model dir when it is local), with a line
  saying so where `announce`."""
  local = "://" not in model_dir
  records = pathlib.Path(model_dir if local else tempfile.gettempdir()) / DEMO_RECORDS
  if not (records / DATASET_FILE).exists():  # written last: a conversion cut short is redone
    if announce:
      print(f"preparing the demo's photos (once): {DEMO_DATA.name} -> {records}", flush=True)
    convert(DEMO_DATA, records, shards=4, overwrite=True, progress=False)  # ours: a killed conversion is redone
  return str(records)


def recipe(name, hparam_str, data_dir=None):
  """The config of the set `name` and `hparam_str` with what the data in `data_dir` and the run
  train.ft_init_ckpt fine-tunes from decide (a line printed per value taken), before hparams.resolve."""
  config = hparams.override(hparams.get_config(name), hparam_str)
  source = config.train.ft_init_ckpt
  if pretrained.is_pretrained_name(source):
    path = pretrained.official_checkpoint(config.model.name, source)  # fetched now, before anything is built
    print(f"train.ft_init_ckpt {source}: the official checkpoint in {path}", flush=True)
  config, notes = hparams.with_facts(config, data_facts(config, data_dir) if data_dir else None,
                                     source_run_model(source) if source else None, hparams.assigned_keys(hparam_str))
  for line in notes:
    print(line, flush=True)
  return config


def run_config(run_dir, hparam_str, job):
  """The config a run recorded (its config.yaml), with `hparam_str` applied to this `job` only; overrides that
  would change the model the run trained are refused."""
  saved = run_dir.read_config()
  if saved is None:
    raise FileNotFoundError(f"{run_dir} holds no training run (no config.yaml): point --model_dir at the "
                            "folder a training run wrote.")
  config = hparams.resolve(hparams.override(ml_collections.ConfigDict(saved), hparam_str))
  changed = {key: value for key, value in model_identity(config).items() if model_identity(saved)[key] != value}
  if changed:
    raise ValueError(f"--hparam_str changes the model the run trained ({', '.join(f'model.{k}' for k in changed)}): "
                     f"--mode={job} uses the run's own model; drop those overrides.")
  return config


def describe(config):
  model = config.model
  scaled = ", ".join(f"{key} {model[key]}" for key in ("width", "depth") if model.get(key) is not None)
  return f"{model.name}{f' ({scaled})' if scaled else ''}"


def check_resumable(run_dir, engine):
  """Refuses a run folder whose latest checkpoint another engine wrote (`engine`: an EngineSpec)."""
  latest = run_dir.latest_checkpoint()
  writer = latest and engines.writer_of(latest)
  if writer and writer is not engine:
    raise CheckpointMismatchError(
        f"{run_dir} holds {os.path.basename(latest)}, a checkpoint of the {writer.name} engine, which the "
        f"{engine.name} engine cannot resume: rerun with --engine={writer.name}, or use another --model_dir.")


def train(run_dir, engine, runtime, name, hparam_str, data_dir, eval_between_stages, allow_new_settings,
          seconds_since_start):
  """Trains the set `name` with `hparam_str` in `run_dir` (a RunDir) on `runtime` with `engine` (an EngineSpec),
  resuming what the folder holds, then evaluates; `seconds_since_start()`: what the process has spent (a time
  budget counts it)."""
  # The demo's set pins its photos' values; the engine is the process's (Keras loaded with its backend).
  planned = hparams.with_values(recipe(name, hparam_str, data_dir), {"runtime.engine": engine.name})
  budget = planned.train.time_budget > 0
  config = hparams.resolve(hparams.photos.budget_start(planned) if budget else planned)
  if data_dir is None and name == "demo":
    data_dir = engine.chief_first(lambda: demo_records(run_dir.path))
  check_resumable(run_dir, engine)
  trainer = Trainer(config, run_dir.path, data_dir, runtime, engine.engine_class(),
                    allow_new_settings=allow_new_settings)
  with trainer.holding_run_dir():  # from the step timing on: a second run on the folder spends nothing
    if budget:
      # The values derived from the run's length follow the epochs the budget gives.
      config, how = fit_to_budget(trainer, lambda epochs: hparams.resolve(planned, epochs), seconds_since_start)
      print(how, flush=True)
    if note := hparams.photos.short_run_note(planned, config):
      print(note, flush=True)
    print(f"{describe(config)} ({trainer.engine.parameter_count:,} parameters) on {runtime.platform}, "
          f"{trainer.engine.replicas} replica(s), model_dir {run_dir}")
    for note in engine.notes(runtime):
      print(note, flush=True)
    print(trainer.stage_table())
    started = seconds_since_start()
    trainer.train(eval_between_stages=eval_between_stages and config.eval.between_stages)
    result = trainer.finish()
  # The time budget's clock: from the process's start (start-up, timing the step, training, the final eval).
  print(f"done in {seconds_since_start():.0f} s ({seconds_since_start() - started:.0f} s of them training and "
        f"evaluating): top-1 {result['top1']:.4f} on {result['examples']} held-out images (chance "
        f"{1 / config.model.num_classes:.2f}); checkpoints, TensorBoard logs and training.png in {run_dir}")


def plan(run_dir, engine, runtime, name, hparam_str, data_dir, eval_between_stages, price_per_hour=None):
  """Measures each stage of the run the flags describe on this machine and projects the run's time (and, at
  `price_per_hour`, its cost) from it (train.plan): prints the table and writes plan.json into `run_dir`.
  Nothing is trained: the measuring steps are undone and the run folder gets plan.json only."""
  planned = hparams.with_values(recipe(name, hparam_str, data_dir), {"runtime.engine": engine.name})
  if planned.train.time_budget > 0:
    raise ValueError(f"train.time_budget {planned.train.time_budget:g} minutes: such a run takes its budget and fits "
                     "its epochs to it as it starts; --plan projects a run of train.epochs: drop the budget to plan "
                     "one of a number of epochs.")
  config = hparams.resolve(planned)
  if data_dir is None and name == "demo":
    data_dir = engine.chief_first(lambda: demo_records(run_dir.path))
  steps_per_epoch, schedule = run_plan(config)
  latest = run_dir.latest_checkpoint()
  from_step = checkpoint_step(latest) if latest else 0
  check_resumable(run_dir, engine)
  print(f"planning {describe(config)}: {len(schedule.stages)} stage(s), {schedule.total_steps} steps of batch "
        f"{config.train.batch_size} on {runtime.platform}; each stage's step compiled and timed", flush=True)
  timer, timed, largest = planning_engine(engine.engine_class(), config, runtime, schedule.stages[-1])
  timings = time_stages(timer, timed, schedule.stages, runtime)
  speeds = [None] * len(schedule.stages)
  if data_dir:
    source = train_source(config, data_dir)
    normalization = get_model_spec(config.model.name).normalization
    batch = timed.train.batch_size
    speeds = [data_speed(train_dataset(
        source, stage_preprocessing(config, stage, normalization, timer.compute_dtype), batch_size=batch,
        num_classes=config.model.num_classes, seed=config.train.seed, shuffle_buffer=config.data.shuffle_buffer),
        batch) for stage in schedule.stages]
  evals = 1 + (len(schedule.stages) - 1 if eval_between_stages and config.eval.between_stages else 0)
  result = make_plan(config, schedule, steps_per_epoch, timings, speeds, engine=engine.name,
                     platform=runtime.platform, replicas=timer.replicas, evals=evals,
                     eval_examples=eval_examples(config, data_dir), from_step=from_step,
                     price_per_hour=price_per_hour, largest=largest)
  print(plan_table(result), flush=True)
  if timer.is_chief:
    tf.io.gfile.makedirs(run_dir.path)
    write_atomically(run_dir.plan_file, result.to_json())
    print(f"written: {run_dir.plan_file}", flush=True)


def evaluate(run_dir, engine, runtime, hparam_str, data_dir, wait_seconds=0, other_class_names=False):
  """Evaluates the run's latest checkpoint (waiting up to `wait_seconds` for each new one until the last step)
  with `engine` (an EngineSpec), the one that trained the run; writes nothing into the run."""
  config = run_config(run_dir, hparam_str, "eval")
  if engines.get(config.runtime.engine) is not engine:
    raise ValueError(f"{run_dir} was trained by the {config.runtime.engine} engine: evaluate it with "
                     f"--engine={config.runtime.engine}.")
  if data_dir is None and tf.io.gfile.exists(os.path.join(run_dir.path, DEMO_RECORDS)):
    data_dir = os.path.join(run_dir.path, DEMO_RECORDS)  # a demo run evaluates on its own photos
  source = eval_source(config, data_dir)
  if unchecked := check_run_classes(run_dir, config, data_dir, other_class_names,
                                     ", or pass --other_class_names to evaluate a relabelled copy of them"):
    print(unchecked, flush=True)
  evaluator = engine.engine_class()(config, runtime, source)
  total_steps = run_plan(config)[1].total_steps
  checkpoints = run_dir.new_checkpoints(wait_seconds) if wait_seconds else [run_dir.latest_checkpoint()]
  for checkpoint in checkpoints:
    if checkpoint is None:
      raise FileNotFoundError(f"No checkpoint in {run_dir.checkpoints} to evaluate.")
    found, _, unreadable = first_readable(run_dir.newest_first(checkpoint), evaluator.restore)
    say_unreadable(unreadable, found, "evaluating")
    result = evaluator.evaluate()
    print(f"step {result['step']}: {accuracy_text(result, config.model.num_classes)} on {result['examples']} images "
          "(EMA weights)")
    if result["step"] >= total_steps:
      break


def export(run_dir, export_dir, hparam_str, overwrite=False, formats=("saved_model",), data_dir=None,
           max_accuracy_drop=2.0, allow_accuracy_drop=False):
  """Exports the run's latest checkpoint (export.writer.export_run) as its config.yaml describes the model, in each
  of `formats`; data_dir (a demo run: its own photos) measures and calibrates the quantized LiteRT variants."""
  config = run_config(run_dir, hparam_str, "export")
  if data_dir is None and tf.io.gfile.exists(os.path.join(run_dir.path, DEMO_RECORDS)):
    data_dir = os.path.join(run_dir.path, DEMO_RECORDS)
  if set(formats) & set(QUANTIZED):  # measured on the data's val photos: of the run's classes
    if unchecked := check_run_classes(run_dir, config, data_dir):
      print(unchecked, flush=True)
  step, _ = export_run(run_dir, config, export_dir, overwrite=overwrite, formats=formats, data_dir=data_dir,
                       max_accuracy_drop=max_accuracy_drop, allow_accuracy_drop=allow_accuracy_drop,
                       say=lambda line: print(line, flush=True))
  print(f"exported step {step} of {describe(config)} (EMA weights) into {export_dir}; best fed "
        f"{config.eval.image_size}-px images (the run's eval size)")
