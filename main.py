"""effnetv2_tf: train and evaluate EfficientNetV2 with progressive learning, on TPU, GPUs or the CPU.

  python main.py                                   # the demo: a small model on shipped flower photos
  python main.py --hparams=imagenet-s --data_dir=gs://bucket/imagenet --model_dir=gs://bucket/runs/s \
      --use_tpu --tpu=my-tpu --zone=us-central2-b --project=my-project
  python main.py --mode=eval --model_dir=runs/mine --data_dir=my_records    # reads the run's config.yaml
  python main.py --mode=export --model_dir=runs/mine --export_dir=export/mine
  python main.py --hparams=cifar10-ft --hparam_str="train.batch_size=64" --data_dir=~/tensorflow_datasets
"""

import os
import pathlib
import sys
import tempfile
import time

from absl import app, flags, logging

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TF's C++ info lines would break the progress bar

flags.DEFINE_enum("mode", "train_and_eval", ["train", "eval", "train_and_eval", "export"],
                  "train; eval the latest checkpoint (with --eval_wait, each new one); train with an eval "
                  "after every stage; or export the latest checkpoint's EMA weights as SavedModels. eval and "
                  "export read the run's config.yaml and write nothing into the run.")
flags.DEFINE_string("model_dir", None, "Where checkpoints, logs, config.yaml and the plot go (default "
                    "runs/<hparams>).")
flags.DEFINE_string("data_dir", None, "TFRecord folder (or TFDS data_dir). The demo converts its shipped "
                    "photos when this is not given.")
flags.DEFINE_string("hparams", "demo", "Named hparam set, e.g. demo, imagenet-s, imagenet21k-l, cifar10-ft.")
flags.DEFINE_string("hparam_str", "", 'Overrides, e.g. "train.batch_size=256,augment.policy=autoaug".')
flags.DEFINE_bool("use_tpu", False, "Train on a Cloud TPU (TPUStrategy).")
flags.DEFINE_string("tpu", None, "TPU name, grpc address, or 'local' on a TPU VM (implies --use_tpu).")
flags.DEFINE_string("zone", None, "GCE zone of the TPU.")
flags.DEFINE_string("project", None, "GCP project of the TPU.")
flags.DEFINE_enum("strategy", "auto", ["auto", "tpu", "multi_worker", "mirrored", "default"],
                  "tf.distribute strategy; auto picks from --use_tpu, TF_CONFIG and the visible GPUs.")
flags.DEFINE_integer("eval_wait", 0, "With --mode=eval: seconds to wait for each new checkpoint (0: "
                     "evaluate the latest one and exit).")
flags.DEFINE_string("export_dir", None, "With --mode=export: where EXPORT_DIR/classification and "
                    "EXPORT_DIR/feature-vector go (default MODEL_DIR/export).")
flags.DEFINE_bool("overwrite", False, "With --mode=export: replace a previous export (never anything else).")
flags.DEFINE_bool("continue_with_new_settings", False, "Resume a run with checkpoints although its schedule, "
                  "data or model settings differ from the ones it was started with (refused otherwise).")
flags.DEFINE_bool("other_class_names", False, "With --mode=eval: evaluate although the data names other classes "
                  "than the run (a relabelled copy of the same classes, in the same order).")
flags.DEFINE_bool("doctor", False, "Check this machine for the run the other flags describe (TF build, libtpu, "
                  "TPU, data, model_dir, one compiled train step) and exit: 0 ready, 1 a problem found.")
flags.DEFINE_enum("tflite", None, ["float32", "dynamic-int8"], "With --mode=export: also write "
                  "EXPORT_DIR/classification.tflite at the eval size.")
FLAGS = flags.FLAGS

STARTED = time.monotonic()  # a time budget counts from here
DEMO_DATA = pathlib.Path(__file__).resolve().parent / "effnetv2_tf" / "demo_data"
DEMO_RECORDS = "demo_records"  # the demo's photos as TFRecords, inside its (local) model_dir
NO_SPACE = "No space left on device"  # what a full disk says, through Python or TensorFlow


def _demo_records(model_dir):
  """The shipped demo photos as TFRecords, converted once (into the model dir when it is local)."""
  from effnetv2_tf.data.convert import convert
  local = "://" not in model_dir
  records = pathlib.Path(model_dir if local else tempfile.gettempdir()) / DEMO_RECORDS
  if not list(records.glob("train-*")):
    convert(DEMO_DATA, records, shards=4, overwrite=True)  # our own folder: a killed conversion is redone
  return str(records)


def _prepare_tensorflow(tpu):
  """The TPU runtime's variables (read once, when TensorFlow loads) and a clear line when TF is missing."""
  from tpu import doctor, pjrt
  report = doctor.Report(write=lambda line: None)
  if not doctor.check_stack(report):  # also sets TPU_LOAD_LIBRARY=0 for the TPU build on a machine without TPUs
    raise ValueError("TensorFlow cannot be imported as installed: run python main.py --doctor for the fix.")
  for line in pjrt.prepare_environment(tpu):
    print(line, flush=True)
  from effnetv2_tf.quiet_start import import_tensorflow
  import_tensorflow()


def _recipe(data_dir=None):
  """The config of --hparams and --hparam_str with the settings the data in `data_dir` decides, before
  hparams.resolve fills in the defaults."""
  import hparams
  config = hparams.override(hparams.get_config(FLAGS.hparams), FLAGS.hparam_str)
  if data_dir:
    from effnetv2_tf.train.run_data import settings_from_data
    for line in settings_from_data(config, data_dir, explicit=hparams.assigned_keys(FLAGS.hparam_str)):
      print(line, flush=True)
  return config


def _config(data_dir=None):
  import hparams
  return hparams.resolve(_recipe(data_dir))


def _run_config(run_dir):
  """The config a run recorded (its config.yaml), with --hparam_str applied to this invocation only;
  overrides that would change the model the run trained are refused."""
  import hparams
  import ml_collections
  from effnetv2_tf.run_dir import model_identity
  saved = run_dir.read_config()
  if saved is None:
    raise FileNotFoundError(f"{run_dir} holds no training run (no config.yaml): point --model_dir at the "
                            "folder a training run wrote.")
  config = hparams.resolve(hparams.override(ml_collections.ConfigDict(saved), FLAGS.hparam_str))
  changed = {key: value for key, value in model_identity(config).items() if model_identity(saved)[key] != value}
  if changed:
    raise ValueError(f"--hparam_str changes the model the run trained ({', '.join(f'model.{k}' for k in changed)}): "
                     f"--mode={FLAGS.mode} uses the run's own model; drop those overrides.")
  return config


def _describe(config):
  model = config.model
  scaled = ", ".join(f"{key} {model[key]}" for key in ("width", "depth") if model.get(key) is not None)
  return f"{model.name}{f' ({scaled})' if scaled else ''}"


def _run():
  use_tpu = FLAGS.use_tpu or bool(FLAGS.tpu)
  tpu = FLAGS.tpu or ("local" if use_tpu else None)
  strategy = "tpu" if use_tpu and FLAGS.strategy == "auto" else FLAGS.strategy
  model_dir = FLAGS.model_dir or os.path.join("runs", FLAGS.hparams)
  if FLAGS.doctor:
    from tpu import doctor
    data_dir = FLAGS.data_dir
    with tempfile.TemporaryDirectory() as scratch:  # the doctor leaves nothing behind, demo records included
      if data_dir is None and FLAGS.hparams == "demo":
        data_dir = scratch
      demo = FLAGS.hparams == "demo" and not FLAGS.data_dir
      sys.exit(doctor.run(lambda: _config(FLAGS.data_dir), data_dir, model_dir, strategy, tpu, FLAGS.zone,
                          FLAGS.project, prepare_data=_demo_records if demo else None))
  _prepare_tensorflow(tpu)  # before anything imports TensorFlow
  from effnetv2_tf.run_dir import RunDir
  run_dir = RunDir(model_dir)
  if FLAGS.mode == "export":  # needs only the run's config and checkpoint: no data, no strategy
    _export(run_dir, FLAGS.export_dir or run_dir.default_export)
    return
  from tpu.strategy import resolve_runtime
  runtime = resolve_runtime(strategy, tpu, FLAGS.zone, FLAGS.project)
  if FLAGS.mode == "eval":
    _evaluate(run_dir, runtime)
  else:
    _train(run_dir, runtime)


def _scale_like_source(config):
  """Fine-tuning from one of our runs: its width and depth, where the config leaves them unset."""
  from effnetv2_tf.train.warm_start import source_run_model
  source = source_run_model(config.train.ft_init_ckpt) if config.train.ft_init_ckpt else None
  for key in ("width", "depth"):
    if source and config.model[key] is None and source.get(key) is not None:
      config.model[key] = source[key]
      print(f"model.{key} {source[key]}, as in {config.train.ft_init_ckpt}", flush=True)


def _train(run_dir, runtime):
  import hparams
  from effnetv2_tf.train.trainer import Trainer
  recipe = _recipe(FLAGS.data_dir)  # the demo's set pins its photos' values
  _scale_like_source(recipe)
  config = hparams.resolve(hparams.budget_start(recipe) if recipe.train.time_budget > 0 else recipe)
  data_dir = FLAGS.data_dir
  if data_dir is None and FLAGS.hparams == "demo":
    data_dir = _demo_records(run_dir.path)
  trainer = Trainer(config, run_dir.path, data_dir, runtime, allow_new_settings=FLAGS.continue_with_new_settings)
  with trainer.holding_run_dir():  # from the step timing on: a second run on the folder spends nothing
    if config.train.time_budget > 0:
      from effnetv2_tf.train.time_budget import fit_to_budget

      def resolve(epochs):  # the values derived from the run's length follow its new epochs
        recipe.train.epochs = float(epochs)
        return hparams.resolve(recipe)

      config, how = fit_to_budget(trainer, resolve, lambda: time.monotonic() - STARTED)
      print(how, flush=True)
    if note := hparams.short_run_note(recipe, config):
      print(note, flush=True)
    print(f"{_describe(config)} ({trainer.engine.parameter_count:,} parameters) on {runtime.platform}, "
          f"{trainer.engine.replicas} replica(s), model_dir {run_dir}")
    print(trainer.stage_table())
    started = time.perf_counter()
    trainer.train(eval_between_stages=FLAGS.mode == "train_and_eval" and config.eval.between_stages)
    result = trainer.finish()
  print(f"done in {time.perf_counter() - started:.0f} s: top-1 {result['top1']:.4f} on {result['examples']} "
        f"held-out images (chance {1 / config.model.num_classes:.2f}); checkpoints, TensorBoard logs and "
        f"training.png in {run_dir}")


def _evaluate(run_dir, runtime):
  """Evaluates the run's latest checkpoint (with --eval_wait, each new one until the last step); writes
  nothing into the run."""
  import tensorflow as tf
  from effnetv2_tf.train.run_data import check_run_classes, eval_source
  from effnetv2_tf.train.schedule import run_plan
  from effnetv2_tf.train.tf_engine import TFEngine
  config = _run_config(run_dir)
  data_dir = FLAGS.data_dir
  if data_dir is None and tf.io.gfile.exists(os.path.join(run_dir.path, DEMO_RECORDS)):
    data_dir = os.path.join(run_dir.path, DEMO_RECORDS)  # a demo run evaluates on its own photos
  source = eval_source(config, data_dir)
  check_run_classes(run_dir, config, data_dir, FLAGS.other_class_names,
                    ", or pass --other_class_names to evaluate a relabelled copy of them")
  engine = TFEngine(config, runtime, source)
  total_steps = run_plan(config)[1].total_steps
  checkpoints = (tf.train.checkpoints_iterator(run_dir.checkpoints, timeout=FLAGS.eval_wait) if FLAGS.eval_wait
                 else [run_dir.latest_checkpoint()])
  for checkpoint in checkpoints:
    if checkpoint is None:
      raise FileNotFoundError(f"No checkpoint in {run_dir.checkpoints} to evaluate.")
    engine.restore(checkpoint)
    result = engine.evaluate()
    print(f"step {result['step']}: top-1 {result['top1']:.4f}, top-5 {result['top5']:.4f} on "
          f"{result['examples']} images (EMA weights)")
    if result["step"] >= total_steps:
      break


def _export(run_dir, export_dir):
  """Exports the run's latest checkpoint (EMA weights, float32 whatever precision trained them) as the
  run's config.yaml describes the model, with the run's class names (or ImageNet's for 1k / 21k classes)."""
  import keras
  from effnetv2_tf.export import TFLITE_FILE, export_saved_models, export_tflite
  from effnetv2_tf.model import get_model_spec
  from effnetv2_tf.labels import imagenet_labels_for
  from effnetv2_tf.train.warm_start import load_run_model
  config = _run_config(run_dir)
  checkpoint = run_dir.latest_checkpoint()
  if not checkpoint:
    raise FileNotFoundError(f"No checkpoint in {run_dir.checkpoints} to export.")
  keras.mixed_precision.set_global_policy("float32")
  model = load_run_model(checkpoint, config.model)
  labels = run_dir.read_labels() or imagenet_labels_for(config.model.num_classes)
  paths = export_saved_models(model, get_model_spec(config.model.name), export_dir,
                              image_size=config.eval.image_size, overwrite=FLAGS.overwrite, labels=labels)
  step = int(checkpoint.rsplit("-", 1)[1])  # the manager numbers checkpoints by step
  print(f"exported step {step} of {_describe(config)} (EMA weights): {paths['classification']}, "
        f"{paths['feature-vector']}; best fed {config.eval.image_size}-px images (the run's eval size)")
  if FLAGS.tflite:
    tflite = export_tflite(paths["classification"], os.path.join(export_dir, TFLITE_FILE),
                           config.eval.image_size, FLAGS.tflite)
    print(f"TFLite ({FLAGS.tflite}): {tflite}")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  logging.set_verbosity(logging.WARNING)  # TensorFlow's INFO lines (checkpoint saver) would break the bars
  from effnetv2_tf.train.preemption import PREEMPTED_EXIT_STATUS, Preempted
  from tpu.pjrt import TPUSetupError  # TensorFlow itself loads only after the TPU set-up, in _run
  try:
    _run()  # ValueError covers bad hparams, checkpoints of another model and export dirs in use
  except Preempted as stopped:
    print(stopped, file=sys.stderr)
    sys.exit(PREEMPTED_EXIT_STATUS)
  except (ValueError, FileNotFoundError, TPUSetupError, FloatingPointError) as error:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)
  except Exception as error:  # noqa: BLE001 -- a full disk surfaces as OSError or a TensorFlow error
    if NO_SPACE not in str(error):
      raise
    print(f"\nerror: {NO_SPACE} while writing into {FLAGS.model_dir or 'the model_dir'}: free space and rerun the "
          "same command (complete checkpoints and logs are kept; an unfinished save is removed on resume).",
          file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  app.run(main)
