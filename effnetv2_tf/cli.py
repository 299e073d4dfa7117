"""The command line (python main.py in the repository; effnetv2-tf once installed): train and evaluate
EfficientNetV2 with progressive learning, on TPU, GPUs or the CPU, and export the runs.

  python main.py                                   # the demo: a small model on shipped flower photos
  python main.py --hparams=imagenet-s --data_dir=gs://bucket/imagenet --model_dir=gs://bucket/runs/s \
      --use_tpu --tpu=my-tpu --zone=us-central2-b --project=my-project
  python main.py --engine=jax                      # the demo, trained by Keras 3 on JAX (every local device)
  python main.py --engine=jax --hparams=imagenet-s ... # on every host of a TPU slice: one run over all its chips
  python main.py --mode=eval --model_dir=runs/mine --data_dir=my_records    # reads the run's config.yaml
  python main.py --mode=export --model_dir=runs/mine --export_dir=export/mine
  python main.py --plan --hparams=imagenet-s --price_per_hour=4.2   # each stage timed here, the run's time and cost
  python main.py --hparams=cifar10-ft --hparam_str="train.batch_size=64" --data_dir=~/tensorflow_datasets
"""

import os
import sys
import tempfile
import time

from absl import app, flags, logging

from effnetv2_tf import engines
from effnetv2_tf.export.formats import formats_help, parse_formats

# TensorFlow's C++ info and warning lines would break the progress bar and an error's one line (quiet_start).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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
flags.DEFINE_enum("engine", engines.NAMES[0], engines.NAMES, "What trains the run: " + "; ".join(
    f"{spec.name}: {spec.summary}" for spec in engines.ENGINES.values()) + ". Eval uses the run's engine.")
flags.DEFINE_string("coordinator_address", None, "With --engine=jax on several processes (hosts): HOST:PORT of "
                    "process 0, with --num_processes and --process_id. A Cloud TPU VM slice, a GKE JobSet, Slurm and "
                    "Open MPI need none of the three: JAX reads them from the environment.")
flags.DEFINE_integer("num_processes", None, "With --coordinator_address: how many processes train the run.")
flags.DEFINE_integer("process_id", None, "With --coordinator_address: this process's index, 0 on the coordinator.")
flags.DEFINE_integer("join_seconds", 60, "With --engine=jax: how long a process waits for the others to start.")
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
                  "TPU or with --engine=jax JAX and its devices, data, model_dir, one compiled train step) and exit: "
                  "0 ready, 1 a problem found.")
flags.DEFINE_bool("plan", False, "Plan the training run the other flags describe and exit: each stage's step compiled "
                  "and timed here on synthetic batches (with --data_dir, the input pipeline too), the run's time "
                  "projected; a table, and plan.json in the model_dir. Nothing is trained.")
flags.DEFINE_float("price_per_hour", None, "With --plan: what the machine costs an hour, for the run's cost.")
flags.DEFINE_string("format", "saved_model", "With --mode=export: comma-separated, of: " + formats_help())
flags.DEFINE_float("max_accuracy_drop", 2.0, "With --mode=export: the top-1 points a quantized LiteRT variant may "
                   "lose against float32 on the run's val photos; one that loses more is not written.")
flags.DEFINE_bool("allow_accuracy_drop", False, "With --mode=export: write quantized LiteRT variants whatever they "
                  "lose (or without labelled photos to measure it on).")
FLAGS = flags.FLAGS

STARTED = time.monotonic()  # a time budget counts from here


def _prepare_tensorflow(tpu):
  """The TPU runtime's variables (read once, when TensorFlow loads) and a clear line when TF is missing."""
  from effnetv2_tf import doctor
  from effnetv2_tf.tpu import pjrt
  report = doctor.Report(write=lambda line: None)
  if not doctor.check_stack(report):  # also sets TPU_LOAD_LIBRARY=0 for the TPU build on a machine without TPUs
    raise ValueError("TensorFlow cannot be imported as installed: run python main.py --doctor for the fix.")
  for line in pjrt.prepare_environment(tpu):
    print(line, flush=True)
  from effnetv2_tf.quiet_start import import_tensorflow
  import_tensorflow()


def _launch():
  """Where this process runs, from the flags."""
  use_tpu = FLAGS.use_tpu or bool(FLAGS.tpu)
  return engines.Launch(
      tpu=FLAGS.tpu or ("local" if use_tpu else None), zone=FLAGS.zone, project=FLAGS.project,
      strategy="tpu" if use_tpu and FLAGS.strategy == "auto" else FLAGS.strategy,
      coordinator_address=FLAGS.coordinator_address, num_processes=FLAGS.num_processes,
      process_id=FLAGS.process_id, join_seconds=FLAGS.join_seconds)


def _doctor(engine, launch, model_dir):
  """The doctor's checks for the run the flags describe; leaves nothing behind, demo records included. The
  jobs module (TensorFlow) is imported only once the doctor's stack checks allow it."""
  from effnetv2_tf import doctor

  def config():
    from effnetv2_tf import hparams, jobs
    return hparams.resolve(jobs.recipe(FLAGS.hparams, FLAGS.hparam_str, FLAGS.data_dir))

  def demo_records(folder):
    from effnetv2_tf import jobs
    return jobs.demo_records(folder, announce=False)

  demo = FLAGS.hparams == "demo" and not FLAGS.data_dir
  with tempfile.TemporaryDirectory() as scratch:
    return doctor.run(engine, launch, config, scratch if demo else FLAGS.data_dir, model_dir,
                      prepare_data=demo_records if demo else None)


def _run():
  engine = engines.get(FLAGS.engine)
  launch = _launch()
  engine.check_flags(launch)
  if FLAGS.plan and FLAGS.mode not in ("train", "train_and_eval"):
    raise ValueError(f"--plan plans a training run, not --mode={FLAGS.mode}: drop one of them.")
  if FLAGS.price_per_hour is not None and (not FLAGS.plan or FLAGS.price_per_hour < 0):
    raise ValueError("--price_per_hour is the machine's price for --plan: give it with --plan, at 0 or more.")
  if "runtime.engine" in FLAGS.hparam_str:
    raise ValueError("runtime.engine is set by --engine (Keras loads its backend before the hparams are read): "
                     "drop it from --hparam_str.")
  # Before anything imports Keras; an export writes TensorFlow SavedModels from either engine's checkpoints.
  os.environ["KERAS_BACKEND"] = "tensorflow" if FLAGS.mode == "export" else engine.keras_backend
  model_dir = FLAGS.model_dir or os.path.join("runs", FLAGS.hparams)
  if FLAGS.doctor:
    sys.exit(_doctor(engine, launch, model_dir))
  _prepare_tensorflow(launch.tpu)  # before anything imports TensorFlow
  if FLAGS.mode != "export":  # an export needs only the run's config and checkpoint: no data, devices, processes
    engine.join(launch)  # before the framework touches a device
  from effnetv2_tf import jobs
  from effnetv2_tf.run_dir import RunDir
  run_dir = RunDir(model_dir)
  if FLAGS.mode == "export":
    jobs.export(run_dir, FLAGS.export_dir or run_dir.default_export, FLAGS.hparam_str, FLAGS.overwrite,
                parse_formats(FLAGS.format), FLAGS.data_dir, FLAGS.max_accuracy_drop, FLAGS.allow_accuracy_drop)
    return
  runtime = engine.runtime(launch)
  if FLAGS.plan:
    jobs.plan(run_dir, engine, runtime, FLAGS.hparams, FLAGS.hparam_str, FLAGS.data_dir,
              eval_between_stages=FLAGS.mode == "train_and_eval", price_per_hour=FLAGS.price_per_hour)
  elif FLAGS.mode == "eval":
    jobs.evaluate(run_dir, engine, runtime, FLAGS.hparam_str, FLAGS.data_dir, FLAGS.eval_wait,
                  FLAGS.other_class_names)
  else:
    jobs.train(run_dir, engine, runtime, FLAGS.hparams, FLAGS.hparam_str, FLAGS.data_dir,
               eval_between_stages=FLAGS.mode == "train_and_eval",
               allow_new_settings=FLAGS.continue_with_new_settings,
               seconds_since_start=lambda: time.monotonic() - STARTED)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  logging.set_verbosity(logging.WARNING)  # TensorFlow's INFO lines (checkpoint saver) would break the bars
  from effnetv2_tf.train.preemption import PREEMPTED_EXIT_STATUS, Preempted
  from effnetv2_tf.tpu.pjrt import TPUSetupError  # TensorFlow itself loads only after the TPU set-up, in _run
  from effnetv2_tf.os_errors import os_error_line
  from effnetv2_tf.weights.pretrained import DownloadError
  from effnetv2_tf.export.runtimes import MissingRuntimeError
  try:
    _run()  # ValueError covers bad hparams, checkpoints of another model and export dirs in use
  except Preempted as stopped:
    print(stopped, file=sys.stderr)
    sys.exit(PREEMPTED_EXIT_STATUS)
  except Exception as error:  # noqa: BLE001 -- the machine's refusals surface as OSError, TensorFlow's errors
    # or, from Orbax's writers, ValueError: what to fix on the machine first, then the command's own errors
    line = os_error_line(error, FLAGS.model_dir or "the model_dir")
    if line is not None:
      print(f"\nerror: {line}", file=sys.stderr)
    elif isinstance(error, (ValueError, FileNotFoundError, TPUSetupError, FloatingPointError, DownloadError,
                            MissingRuntimeError)):
      print(f"error: {error}", file=sys.stderr)
    else:
      raise
    sys.exit(2)


def run():
  """The installed command (effnetv2-tf) and python main.py."""
  app.run(main)
