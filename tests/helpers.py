"""Helpers shared by the tests: the tiny runs' settings, one launcher for the package's commands (in this
process, or in a process of their own where the process boundary is what a test is about), official-layout
checkpoints written from the official names, and a runner that loads SavedModels in a Python process that cannot
import this package."""

import contextlib
import http.server
import importlib.metadata
import io
import json
import pathlib
import shutil
import subprocess
import sys
import tarfile
import threading
import time

import numpy as np
import tensorflow as tf

ROOT = pathlib.Path(__file__).resolve().parents[1]
OFFICIAL_VARIABLES = pathlib.Path(__file__).resolve().parent / "official_variables"
OFFICIAL_MODELS = sorted(path.stem for path in OFFICIAL_VARIABLES.glob("*.txt"))
EMA_SUFFIX = "/ExponentialMovingAverage"

# Tiny runs for tests: a 0.25-width/depth B0 on batches of 8 demo images at 32 -> 40 px. Each test config is
# TINY with what that test needs changed, so they cannot drift apart unseen.
TINY = {"model.width": 0.25, "model.depth": 0.25, "train.batch_size": 8, "progressive.image_size_min": 32,
        "progressive.image_size_max": 40, "eval.image_size": 40, "eval.batch_size": 10, "train.epochs": 1.0}


def tiny(**changes):
  """The --hparam_str of TINY with `changes` (dots written as "__": progressive__stages=2)."""
  settings = {**TINY, **{key.replace("__", "."): value for key, value in changes.items()}}
  return ",".join(f"{key}={str(value).lower() if isinstance(value, bool) else value}"
                  for key, value in settings.items())


# main.py's finished run (tests/conftest.py): 2 steps in one stage; bn_epsilon 0.5 (officially 1e-3) tells
# its model apart from one built without the run's config.
TINY_RUN = tiny(model__bn_epsilon=0.5, data__num_train_examples=16, progressive__stages=1)
# The trainer tests' run (tests/train/run_trainer.py): 6 steps in 2 stages, deterministic, no RNG in the model.
TINY_TRAINER = tiny(data__num_train_examples=48, progressive__stages=2, runtime__steps_per_loop=1,
                    runtime__checkpoint_steps=2, runtime__deterministic=True, regularization__dropout_max=0.0,
                    regularization__survival_prob=1.0, train__warmup_epochs=0.0)
# main.py runs of the trainer tests: 24 steps in 3 stages (32 -> 48 px), a checkpoint at every step.
MAIN_TINY = tiny(progressive__image_size_max=48, eval__image_size=48, data__num_train_examples=192, progressive__stages=3,
                 runtime__steps_per_loop=1, runtime__checkpoint_steps=1, runtime__deterministic=True,
                 train__warmup_epochs=0.0)
# The fault tests' run: 12 steps in 2 stages (0-6 at 32 px, 6-12 at 40 px), one step per host loop.
TWO_STAGES = tiny(eval__batch_size=50, data__num_train_examples=96, progressive__stages=2, runtime__steps_per_loop=1,
                  runtime__checkpoint_steps=6, runtime__keep_checkpoints=10)


def _installed(distribution):
  try:
    return bool(importlib.metadata.version(distribution))
  except importlib.metadata.PackageNotFoundError:
    return False


# The TPU build (CI's second stack, run on the CPU) links no XLA CPU backend: jit_compile there fails with
# "could not find registered transfer manager for platform Host". XLA on the CPU is tested on the CPU build.
TPU_BUILD = _installed("tensorflow-tpu")
NO_XLA_ON_THIS_CPU = "the TPU build of TensorFlow has no XLA CPU backend (XLA is tested on the CPU build)"


def official_variables(model_name):
  """{official name: shape} of every variable the official code creates for `model_name` (1000 classes)."""
  variables = {}
  for line in (OFFICIAL_VARIABLES / f"{model_name}.txt").read_text().splitlines():
    if line and not line.startswith("#"):
      name, shape = line.split()
      variables[name] = tuple(int(d) for d in shape.split("x"))
  return variables


def _keras_path(official_name):
  """Where the test expects an official variable in our model, read off the official name itself."""
  path = official_name.split("/", 1)[1]
  if path.startswith("head/dense/"):
    path = "predictions/" + path[len("head/dense/"):]
  return path.replace("/depthwise_kernel", "/kernel")


def official_values(model, model_name=None):
  """{official name (from the names file): value of `model`'s variable}, for every name in the file.

  `model` must be a full-size model of the file's variant; the classifier may have another class count
  (its official names are kept, with our shapes). Fails when a file name has no counterpart in the model
  or the model has variables the file lacks.
  """
  model_name = model_name or model.name
  ours = {variable.path: variable for variable in model.weights}
  values = {}
  for name, shape in official_variables(model_name).items():
    variable = ours.pop(_keras_path(name), None)
    assert variable is not None, f"{name} has no counterpart in {model.name}"
    assert name.split("/")[-2] == "dense" or tuple(variable.shape) == shape, (name, variable.shape, shape)
    values[name] = variable.numpy()
  assert not ours, f"{model.name} has variables the official code lacks: {sorted(ours)[:5]}"
  return values


def randomize(model, seed):
  """Distinct random values in every variable (positive variances), so that a misplaced value shows."""
  rng = np.random.default_rng(seed)
  for v in model.weights:
    v.assign(rng.uniform(0.5, 1.5, v.shape) if v.path.endswith("variance") else rng.normal(0, 0.3, v.shape))


def write_tf1_checkpoint(prefix, named_values):
  """A TF1 name-based checkpoint (tf.compat.v1 Saver), the format of the official tarballs; returns its prefix."""
  with tf.Graph().as_default():
    variables = {name: tf.compat.v1.Variable(value, name=f"v{i}")
                 for i, (name, value) in enumerate(named_values.items())}
    variables["global_step"] = tf.compat.v1.Variable(np.int64(123), name="global_step")
    saver = tf.compat.v1.train.Saver(var_list=variables)
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      return saver.save(session, str(prefix))


def write_official_checkpoint(prefix, raw_model, ema_model=None, model_name=None):
  """An official-layout checkpoint: raw values from `raw_model`, EMA shadows from `ema_model`, and an
  optimizer slot per variable (the loader must ignore it), all under the names of the official file."""
  raw = official_values(raw_model, model_name)
  values = dict(raw)
  values.update({f"{name}/RMSProp": np.ones_like(value) for name, value in raw.items()})
  if ema_model is not None:
    values.update({name + EMA_SUFFIX: value for name, value in official_values(ema_model, model_name).items()})
  return write_tf1_checkpoint(prefix, values)


def official_tarball(tmp_path, folder_name, write):
  """An official-layout tarball: `folder_name`/ holding the checkpoint that `write(prefix)` writes."""
  (tmp_path / "src" / folder_name).mkdir(parents=True)
  write(tmp_path / "src" / folder_name / "model")
  buffer = io.BytesIO()
  with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
    tar.add(tmp_path / "src" / folder_name, arcname=folder_name)
  return buffer.getvalue()


class Server:
  """Serves {name: bytes} on 127.0.0.1; `cut` sends half of each file under its full Content-Length."""

  def __init__(self, files):
    self.files, self.requests, self.cut = files, [], False
    server = self

    class Handler(http.server.BaseHTTPRequestHandler):
      def do_GET(self):  # noqa: N802 -- the name http.server calls
        server.requests.append(self.path)
        body = server.files.get(self.path.rsplit("/", 1)[-1])
        if body is None:
          self.send_error(404)
          return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:len(body) // 2] if server.cut else body)

      def log_message(self, *args):
        pass

    self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v2/"
    threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

  def close(self):
    self.httpd.shutdown()
    self.httpd.server_close()


@contextlib.contextmanager
def serving(files, monkeypatch):
  """A Server of `files` that the official weights are downloaded from (EFFNETV2_WEIGHTS_URL) meanwhile."""
  from effnetv2_tf.weights.pretrained import URL_VARIABLE
  server = Server(files)
  monkeypatch.setenv(URL_VARIABLE, server.url)
  try:
    yield server
  finally:
    server.close()


# Runs in a fresh Python that refuses to import this package: loads SavedModels given as JSON argv[1]
# ({"key": [path, signature, input name, [batch, height, width, 3]]}) and prints each output on uniform
# [0, 1) images from seed = batch.
_WITHOUT_PACKAGE = r"""
import importlib.abc, json, sys
class Block(importlib.abc.MetaPathFinder):
  def find_spec(self, name, path=None, target=None):
    if name.split(".")[0] in ("effnetv2_tf", "hparams", "tpu"):
      raise ImportError("the export must not need " + name)
sys.meta_path.insert(0, Block())
import numpy as np, tensorflow as tf
out = {}
for key, (path, signature, input_name, shape) in json.loads(sys.argv[1]).items():
  x = np.random.default_rng(shape[0]).uniform(0, 1, shape).astype("float32")
  result = tf.saved_model.load(path).signatures[signature](**{input_name: tf.constant(x)})
  out[key] = {name: value.numpy().tolist() for name, value in result.items()}
print("RESULT " + json.dumps(out))
"""


def result_of(stdout):
  """The JSON a helper process printed on its `RESULT ` line."""
  line = next(line for line in stdout.splitlines() if line.startswith("RESULT "))
  return json.loads(line[len("RESULT "):])


def trainer_command(model_dir, data_dir, *extra):
  """The command line of tests/train/run_trainer.py (run it with cwd=ROOT)."""
  return [sys.executable, "-m", "tests.train.run_trainer", f"--model_dir={model_dir}", f"--data_dir={data_dir}",
          *map(str, extra)]


def run_trainer(model_dir, data_dir, *extra, env=None, timeout=300):
  """Runs tests/train/run_trainer.py to its end; returns its RESULT, with what it printed under "stdout"."""
  done = subprocess.run(trainer_command(model_dir, data_dir, *extra), capture_output=True, text=True,
                        timeout=timeout, env=env, cwd=ROOT)
  assert done.returncode == 0, done.stderr[-3000:]
  return {**result_of(done.stdout), "stdout": done.stdout}


def signal_at_step(command, model_dir, step, signum, env=None, last_step=None):
  """Starts `command` (a training run into `model_dir`) and sends `signum` once history.jsonl has a row at
  `step` or later (before `last_step`, the run's end); returns (process, stderr) once the process has ended."""
  process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                             env=env)
  history = pathlib.Path(model_dir) / "history.jsonl"
  deadline = time.time() + 400
  while time.time() < deadline and process.poll() is None:
    rows = [json.loads(line) for line in history.read_text().splitlines()] if history.exists() else []
    if rows and rows[-1]["step"] >= step:
      process.send_signal(signum)
      _, stderr = process.communicate(timeout=300)
      assert last_step is None or rows[-1]["step"] < last_step, "the run ended before it could be signalled"
      return process, stderr
    time.sleep(0.02)
  process.kill()
  raise AssertionError(f"the run never reached step {step}: {process.communicate()[1][-2000:]}")


def checkpoint_weights(model_dir):
  """(names, values) of the model, EMA and RNG-state tensors of a run's latest checkpoint."""
  reader = tf.train.load_checkpoint(str(pathlib.Path(model_dir) / "checkpoints"))
  names = sorted(n for n in reader.get_variable_to_shape_map() if n.startswith(("model/", "ema/", "rng_states/"))
                 and "OPTIMIZER_SLOT" not in n)
  return names, [reader.get_tensor(n) for n in names]


def main_command(*args):
  """The command line of `python main.py ARGS`."""
  return [sys.executable, str(ROOT / "main.py"), *map(str, args)]


def main_py(*args, cwd=ROOT, timeout=300):
  """Runs `python main.py ARGS` in a process of its own in `cwd`; returns the CompletedProcess (text output).

  For what only a process shows: signals, kills and another process on the same folder, the time a budget
  counts from start-up, TensorFlow's start-up lines. Everything else calls `run_main`."""
  return subprocess.run(main_command(*args), cwd=cwd, capture_output=True, text=True, timeout=timeout)


def call(main, *args):
  """Runs a command's `main(argv)` in this process as its command line would run; returns a CompletedProcess
  with its exit status (SystemExit's code, 0 when it returns) and what it printed to stdout and stderr."""
  argv = [str(arg) for arg in args]
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    try:
      main(argv)
      status = 0
    except SystemExit as exit_:
      status = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
  return subprocess.CompletedProcess(argv, status, out.getvalue(), err.getvalue())


def run_main(*args):
  """`python main.py ARGS`, run in this process (absl flags parsed, then reset); returns a CompletedProcess.

  A time budget counts from this call (a process counts from its start-up, imports included)."""
  import keras
  from effnetv2_tf import cli
  cli.FLAGS(["main.py", *map(str, args)])
  cli.STARTED = time.monotonic()
  try:
    return call(lambda argv: cli.main(["main.py"]))
  finally:
    cli.FLAGS.unparse_flags()
    keras.mixed_precision.set_global_policy("float32")  # a run's precision is its process's: put it back


def snapshot(folder):
  """{relative path: sha256} of every file under `folder`: equal before and after means nothing was written."""
  import hashlib
  return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
          for path in sorted(pathlib.Path(folder).rglob("*")) if path.is_file()}


def copy_run(run, into):
  """A copy of the run folder `run` at `into` (for a test that changes or extends a shared run)."""
  return pathlib.Path(shutil.copytree(run, into, dirs_exist_ok=True))


def unit_images(batch, size):
  """The images run_without_package feeds for a [batch, size, size, 3] shape."""
  return np.random.default_rng(batch).uniform(0, 1, (batch, size, size, 3)).astype("float32")


def run_without_package(calls):
  """{key: {output name: array}} for {key: (SavedModel path, signature, input name, (batch, size))}."""
  spec = {key: [str(path), signature, input_name, [batch, size, size, 3]]
          for key, (path, signature, input_name, (batch, size)) in calls.items()}
  done = subprocess.run([sys.executable, "-c", _WITHOUT_PACKAGE, json.dumps(spec)], capture_output=True, text=True,
                        timeout=300)
  assert done.returncode == 0, done.stderr[-3000:]
  result = result_of(done.stdout)
  return {key: {name: np.array(value) for name, value in outputs.items()} for key, outputs in result.items()}
