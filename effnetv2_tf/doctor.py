"""A preflight before a long run: `python main.py --doctor` with the flags the run will use.

It reports the TensorFlow build and libtpu, the TPU runtime variables, the devices (and the TPU topology when
one answers) or, with --engine=jax, JAX, Orbax and the devices JAX finds (the mesh a batch is split over), the
platform's mixed precision and XLA choices, whether --data_dir holds the expected files
(with a record count sample) and --model_dir is writable, and it compiles and times one train step of the
chosen hparams at the first stage's image size on a synthetic batch. Each problem is one line with its fix;
the exit status is 1 when something would fail. It writes nothing but a probe file it removes.
"""

import importlib.metadata
import os

from effnetv2_tf.tpu import pjrt

CPU_STEP_BATCH = 16  # the doctor's CPU check times a small batch (a plan times up to train.plan.CPU_BATCH)

SUPPORTED_TF = ("2.20.", "2.21.")
TF_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-tpu", "tensorflow-intel", "tf-nightly",
                    "tf-nightly-tpu")
LIBTPU_FOR_TF_TPU = "0.0.14"  # the one tensorflow-tpu 2.20 was built with (see setup.py)


class Report:
  """Lines of `label: text`; problems carry their fix and decide the exit status. `shown`: the labels whose
  info lines are written (None: all; problems always are)."""

  def __init__(self, write=print, shown=None):
    self.write = write
    self.problems = 0
    self.shown = shown

  def info(self, label, text):
    if self.shown is None or label in self.shown:
      self.write(f"{label:>12}: {text}")

  def problem(self, label, text, fix):
    self.problems += 1
    self.write(f"{label:>12}: PROBLEM {text}; fix: {fix}")


def _version(distribution):
  try:
    return importlib.metadata.version(distribution)
  except importlib.metadata.PackageNotFoundError:
    return None


def check_stack(report, environ=os.environ):
  """The installed TensorFlow build(s) and libtpu, read without importing TensorFlow (a bad libtpu aborts
  the import). Returns whether TensorFlow can be imported."""
  installed = {name: version for name in TF_DISTRIBUTIONS if (version := _version(name))}
  if not installed:
    report.problem("tensorflow", "not installed", "pip install -e \".[cpu]\" (or .[gpu]; .[tpu] on a TPU VM)")
    return False
  report.info("tensorflow", ", ".join(f"{name} {version}" for name, version in installed.items()))
  if len(installed) > 1:
    report.problem("tensorflow", f"{' and '.join(installed)} share one import package (the last installed wins)",
                   f"pip uninstall -y {' '.join(installed)}, then install one route (tpu/README.md)")
  for name, version in installed.items():
    if not version.startswith(SUPPORTED_TF):
      report.problem("tensorflow", f"{name} {version} is not a supported version (2.20, 2.21)",
                     "pip install -e \".[cpu]\" (or .[gpu], .[tpu])")
  libtpu = _version("libtpu")
  report.info("libtpu", f"{libtpu} at {pjrt.libtpu_path()}" if libtpu else "not installed")
  if "tensorflow-tpu" in installed:
    if libtpu != LIBTPU_FOR_TF_TPU:
      report.problem("libtpu", f"{libtpu or 'none'} with tensorflow-tpu (other releases abort or hang at import)",
                     f"pip install libtpu=={LIBTPU_FOR_TF_TPU}")
      return False
    if not pjrt.has_tpu_devices() and environ.get("TPU_LOAD_LIBRARY") != "0":
      report.info("libtpu", "no TPU chips on this machine: TPU_LOAD_LIBRARY=0 (runs the TPU build on the CPU)")
      environ["TPU_LOAD_LIBRARY"] = "0"
  return True


def check_choices(report, runtime, config):
  """The precision and XLA the runtime makes of the config's settings."""
  choices = config.runtime
  for label, setting, choose in (("precision", "mixed_precision", runtime.mixed_precision_policy),
                                 ("xla", "jit_compile", runtime.jit_compile)):
    try:
      chosen = choose(choices[setting])
    except ValueError as error:
      report.problem(label, str(error).split(": ")[0], str(error).split(": ", 1)[-1])
      continue
    text = chosen if isinstance(chosen, str) else "on" if chosen else "off"
    report.info(label, f"{text} (runtime.{setting}={choices[setting]})")


def _shard(files, processes):
  """What one of `processes` input pipelines reads of `files` (sources.TFRecordSource's rule), in words."""
  if processes == 1:
    return ""
  if len(files) >= processes:
    fewest, most = len(files) // processes, -(-len(files) // processes)
    return f"; each of the {processes} processes reads {fewest if fewest == most else f'{fewest}-{most}'} of them"
  return f"; each of the {processes} processes reads every {processes}th record (fewer files than processes)"


def check_data(report, config, data_dir, processes=1):
  """The train and eval files exist and hold records (the first train file's count as a sample), and what each
  of `processes` input pipelines reads."""
  import tensorflow as tf
  from effnetv2_tf.train.run_data import eval_source, train_source
  if config.data.source == "tfds":
    report.info("data", f"TFDS {config.data.tfds_name} in {data_dir} (read when training starts)")
    return
  if not data_dir:
    report.problem("data", "no --data_dir given", "pass --data_dir=FOLDER of TFRecords (or data.source=tfds)")
    return
  if not tf.io.gfile.isdir(data_dir):
    report.problem("data", f"{data_dir} is not a readable folder", "check the path (and gs:// credentials)")
    return
  for split, make_source, pattern in (("train", train_source, config.data.train_files),
                                      ("eval", eval_source, config.data.eval_files)):
    try:
      files = make_source(config, data_dir).files()
    except (ValueError, FileNotFoundError, tf.errors.OpError):
      report.problem("data", f"no {split} files match {os.path.join(data_dir, pattern)}",
                     f"convert your photos (python -m effnetv2_tf.data.convert) or set data.{split}_files")
      continue
    count = sum(1 for _ in tf.data.TFRecordDataset(files[0]).take(100_000))
    report.info("data", f"{split}: {len(files)} file(s) matching {pattern}, {count:,} records in "
                f"{os.path.basename(files[0])}{_shard(files, processes)}")


def check_model_dir(report, model_dir):
  """model_dir (or, when it does not exist yet, the folder it would be made in) takes a file."""
  import tensorflow as tf
  from effnetv2_tf.run_dir import RunDir
  target = model_dir
  if "://" not in model_dir:
    while not os.path.exists(target):
      target = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(target):
      report.problem("model_dir", f"{target} is a file, not a folder", "choose another --model_dir")
      return
  probe = os.path.join(target, f".doctor-probe-{os.getpid()}")
  try:
    with tf.io.gfile.GFile(probe, "w") as f:
      f.write("probe")
    tf.io.gfile.remove(probe)
  except (tf.errors.OpError, OSError) as error:
    report.problem("model_dir", f"cannot write in {target} ({type(error).__name__})",
                   "choose a writable --model_dir (gs://: the VM's service account needs write access)")
    return
  latest = RunDir(model_dir).latest_checkpoint() if tf.io.gfile.exists(model_dir) else None
  report.info("model_dir", f"{model_dir} writable; " + (f"resumes from {os.path.basename(latest)}" if latest
                                                         else "starts a new run"))


def time_train_step(report, config, runtime, engine_class):
  """Compiles and times the run's train step at the first stage's size on synthetic batches, through the engine
  that would train it (`engine_class`) and the timing of a run's plan (train.plan)."""
  from effnetv2_tf.train import plan
  from effnetv2_tf.train.schedule import run_plan
  stage = run_plan(config)[1].stages[0]
  try:
    engine, timed = plan.timing_engine(engine_class, config, runtime, cpu_batch=CPU_STEP_BATCH)
    timing, = plan.time_stages(engine, timed, [stage], runtime, seconds=0)
  except ValueError as error:  # e.g. a batch that does not split over the devices
    report.problem("train step", str(error).split(": ")[0], str(error).split(": ", 1)[-1])
    return
  note = f" (the run's batch {config.train.batch_size} is timed at {timing.batch} on the CPU)" if (
      timing.batch != config.train.batch_size) else ""
  report.info("train step", f"{config.model.name} at {stage.image_size} px, batch {timing.batch}{note}: compile "
              f"{timing.compile_seconds:.1f} s, step {timing.step_seconds:.3f} s, "
              f"{timing.batch / timing.step_seconds:,.1f} img/s, {_peak_memory(runtime, timing.peak_memory)}")
  if timing.loss != timing.loss:  # NaN
    report.problem("train step", "the loss is NaN on a synthetic batch", "check runtime.mixed_precision and lr")


def _peak_memory(runtime, peak):
  """The words for `peak` (train.plan.peak_memory's bytes: the device's, or the process's on the CPU)."""
  if peak is None:
    return f"peak {runtime.platform.upper()}:0 memory not reported"
  where = "host" if runtime.platform == "cpu" else f"{runtime.platform.upper()}:0"
  return f"peak {where} memory {peak / 2**30:.2f} GiB"


def run(engine, launch, make_config, data_dir, model_dir, prepare_data=None, write=print):
  """Runs every check (the later ones only where the earlier ones allow); returns the exit status.

  Args:
    engine: the EngineSpec that would train the run (Keras already set to its backend); launch: the flags' Launch.
    make_config: returns the resolved config; called once the stack checks allow importing TensorFlow.
    prepare_data: called with data_dir before the data check (the demo converts its photos there).
  With several processes (engine.join), each runs every check (the step is one program over all of them);
  process 0 reports all, the others their devices, their share of the data and their problems, each line marked
  with the process.
  """
  report = Report(write)
  stack = []  # the stack's lines wait for the join: then marked with the process (the others' problems only)
  report.write = stack.append
  ready = check_stack(report) and engine.check_setup(report, launch)
  report.write = write
  processes = 1
  if ready and (joined := engine.join(launch))[1] > 1:
    index, processes = joined
    report.write = lambda line: write(f"process {index}: {line}")
    report.shown = None if index == 0 else {"devices", "data"}
    stack = [line for line in stack if index == 0 or ": PROBLEM " in line]
  for line in stack:
    report.write(line)
  runtime = engine.check_devices(report, launch) if ready else None
  if runtime is not None:
    config = make_config()
    if prepare_data is not None:
      data_dir = prepare_data(data_dir)
    check_choices(report, runtime, config)
    check_data(report, config, data_dir, processes)
    check_model_dir(report, model_dir)
    time_train_step(report, config, runtime, engine.engine_class())
  report.write(f"{report.problems} problem(s)" if report.problems else "ready: no problems found")
  return 1 if report.problems else 0
