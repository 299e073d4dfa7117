"""effnetv2_tf: train and evaluate EfficientNetV2 with progressive learning, on TPU, GPUs or the CPU.

  python main.py                                   # the demo: a small model on shipped flower photos
  python main.py --hparams=imagenet-s --data_dir=gs://bucket/imagenet --model_dir=gs://bucket/runs/s \
      --use_tpu --tpu=my-tpu --zone=us-central2-b --project=my-project
  python main.py --engine=jax                      # the demo, trained by Keras 3 on JAX (every local device)
  python main.py --engine=jax --hparams=imagenet-s ... # on every host of a TPU slice: one run over all its chips
  python main.py --mode=eval --model_dir=runs/mine --data_dir=my_records    # reads the run's config.yaml
  python main.py --mode=export --model_dir=runs/mine --export_dir=export/mine
  python main.py --hparams=cifar10-ft --hparam_str="train.batch_size=64" --data_dir=~/tensorflow_datasets
"""

import importlib.util
import os
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
flags.DEFINE_enum("engine", "tf", ["tf", "jax"], "What trains the run: tf (TensorFlow, tf.distribute) or jax "
                  "(Keras 3 on JAX, every local device: pip install -e \".[jax]\"). Eval uses the run's engine.")
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
flags.DEFINE_enum("tflite", None, ["float32", "dynamic-int8"], "With --mode=export: also write "
                  "EXPORT_DIR/classification.tflite at the eval size.")
FLAGS = flags.FLAGS

STARTED = time.monotonic()  # a time budget counts from here
NO_SPACE = "No space left on device"  # what a full disk says, through Python or TensorFlow


def _prepare_tensorflow(tpu):
  """The TPU runtime's variables (read once, when TensorFlow loads) and a clear line when TF is missing."""
  from effnetv2_tf import doctor
  from tpu import pjrt
  report = doctor.Report(write=lambda line: None)
  if not doctor.check_stack(report):  # also sets TPU_LOAD_LIBRARY=0 for the TPU build on a machine without TPUs
    raise ValueError("TensorFlow cannot be imported as installed: run python main.py --doctor for the fix.")
  for line in pjrt.prepare_environment(tpu):
    print(line, flush=True)
  from effnetv2_tf.quiet_start import import_tensorflow
  import_tensorflow()


def _join_processes():
  """Joins the processes of a JAX run on several hosts (jax_processes.join, from the flags); returns their count."""
  from effnetv2_tf.train.jax_processes import join
  return join(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id, FLAGS.join_seconds)


def _doctor(model_dir, strategy, tpu):
  """The doctor's checks for the run the flags describe; leaves nothing behind, demo records included. The
  jobs module (TensorFlow) is imported only once the doctor's stack checks allow it."""
  from effnetv2_tf import doctor

  def config():
    from effnetv2_tf import jobs
    import hparams
    return hparams.resolve(jobs.recipe(FLAGS.hparams, FLAGS.hparam_str, FLAGS.data_dir))

  def demo_records(folder):
    from effnetv2_tf import jobs
    return jobs.demo_records(folder)

  demo = FLAGS.hparams == "demo" and not FLAGS.data_dir
  with tempfile.TemporaryDirectory() as scratch:
    return doctor.run(config, scratch if demo else FLAGS.data_dir, model_dir, strategy, tpu, FLAGS.zone,
                      FLAGS.project, prepare_data=demo_records if demo else None, engine=FLAGS.engine,
                      join=_join_processes)


def _runtime(strategy, tpu):
  """The devices to run on: the tf.distribute strategy's, or with --engine=jax every device JAX finds."""
  if FLAGS.engine == "jax":
    from effnetv2_tf.train.jax_engine import jax_runtime
    return jax_runtime()
  from tpu.strategy import resolve_runtime
  return resolve_runtime(strategy, tpu, FLAGS.zone, FLAGS.project)


def _choose_engine(use_tpu):
  """Loads Keras with the --engine's backend (before anything imports Keras); refuses flags of the other."""
  if FLAGS.engine == "jax":
    if use_tpu or FLAGS.strategy != "auto":
      raise ValueError("--use_tpu, --tpu and --strategy choose TensorFlow's devices; --engine=jax trains on every "
                       "device JAX finds (a TPU VM's included): drop them.")
    if importlib.util.find_spec("jax") is None:
      raise ValueError('--engine=jax needs JAX: pip install -e ".[jax]"')
  elif FLAGS.coordinator_address or FLAGS.num_processes or FLAGS.process_id is not None:
    raise ValueError("--coordinator_address, --num_processes and --process_id start the processes of an "
                     "--engine=jax run; TensorFlow's workers read TF_CONFIG (--strategy=multi_worker).")
  if "runtime.engine" in FLAGS.hparam_str:
    raise ValueError("runtime.engine is set by --engine (Keras loads its backend before the hparams are read): "
                     "drop it from --hparam_str.")
  # An export writes TensorFlow SavedModels from either engine's checkpoints.
  os.environ["KERAS_BACKEND"] = "jax" if FLAGS.engine == "jax" and FLAGS.mode != "export" else "tensorflow"


def _run():
  use_tpu = FLAGS.use_tpu or bool(FLAGS.tpu)
  _choose_engine(use_tpu)
  tpu = FLAGS.tpu or ("local" if use_tpu else None)
  strategy = "tpu" if use_tpu and FLAGS.strategy == "auto" else FLAGS.strategy
  model_dir = FLAGS.model_dir or os.path.join("runs", FLAGS.hparams)
  if FLAGS.doctor:
    sys.exit(_doctor(model_dir, strategy, tpu))
  _prepare_tensorflow(tpu)  # before anything imports TensorFlow
  if FLAGS.engine == "jax" and FLAGS.mode != "export":  # before JAX touches a device
    _join_processes()
  from effnetv2_tf import jobs
  from effnetv2_tf.run_dir import RunDir
  run_dir = RunDir(model_dir)
  if FLAGS.mode == "export":  # needs only the run's config and checkpoint: no data, no strategy
    jobs.export(run_dir, FLAGS.export_dir or run_dir.default_export, FLAGS.hparam_str, FLAGS.overwrite, FLAGS.tflite)
    return
  runtime = _runtime(strategy, tpu)
  if FLAGS.mode == "eval":
    jobs.evaluate(run_dir, runtime, FLAGS.hparam_str, FLAGS.data_dir, FLAGS.eval_wait, FLAGS.other_class_names,
                  engine=FLAGS.engine)
  else:
    jobs.train(run_dir, runtime, FLAGS.hparams, FLAGS.hparam_str, FLAGS.data_dir,
               eval_between_stages=FLAGS.mode == "train_and_eval",
               allow_new_settings=FLAGS.continue_with_new_settings,
               seconds_since_start=lambda: time.monotonic() - STARTED, engine=FLAGS.engine)


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
