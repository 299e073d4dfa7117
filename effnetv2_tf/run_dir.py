"""The run directory: every file a training run writes, named in one place.

  MODEL_DIR/                  local or gs://
    config.yaml               the resolved config; written by training, read by eval, export and warm starts
    labels.txt                the class names, when the training data named them (the converter's labels.txt)
    checkpoints/ckpt-STEP.*   model, optimizer, EMA and RNG states (exact resume), and the settings they were
                              trained with: config.yaml's stand-in where it is lost (effnetv2_tf.checkpoints:
                              TensorFlow's prefixes, the TF engine's)
    checkpoints/ckpt_STEP/    the same as an Orbax step folder (the JAX engine's)
    workers/TASK/             the save copies of the other MultiWorkerMirrored workers
    diverged/TIME/            checkpoints a divergence started from, moved out of the way of a resume
    history.jsonl             one row per host loop
    eval.jsonl                one row per evaluation
    train/                    TensorBoard events
    training.png              the stage schedule and the curves
    plan.json                 the plan of the run (main.py --plan): each stage measured, the run's time projected
    export/                   the default export directory

Files are replaced whole through a temporary file and a rename, so a killed write never leaves half a file.
One training process holds a local run dir at a time (an OS lock on MODEL_DIR/.lock).
"""

import contextlib
import fcntl
import os
import socket
import time
import uuid

import tensorflow as tf
import yaml

from effnetv2_tf import hparams
from effnetv2_tf.checkpoints import FORMATS, format_of, tf_prefixes
from effnetv2_tf.labels import read_labels

CONFIG_FILE = "config.yaml"
LABELS_FILE = "labels.txt"
CHECKPOINT_DIR = "checkpoints"
WORKERS_DIR = "workers"
DIVERGED_DIR = "diverged"
DAMAGED_DIR = "damaged"  # checkpoints a resume could not read back, set aside
HISTORY_FILE = "history.jsonl"
EVAL_FILE = "eval.jsonl"
TENSORBOARD_DIR = "train"
PLOT_FILE = "training.png"
PLAN_FILE = "plan.json"
EXPORT_DIR = "export"
LOCK_FILE = ".lock"


class RunDirBusyError(ValueError):
  """Another process is training in this run dir."""


# The settings a run's weights depend on: its checkpoints load into, and evaluate as, only this model.
MODEL_IDENTITY_KEYS = ("name", "width", "depth", "num_classes", "bn_epsilon")


def model_identity(config):
  """The MODEL_IDENTITY_KEYS of a config (a ConfigDict or the dict of a config.yaml)."""
  model = config["model"]
  return {key: model.get(key) for key in MODEL_IDENTITY_KEYS}


def config_text(config):
  """A config's dict as config.yaml holds it."""
  return yaml.safe_dump(config, sort_keys=False)


def write_atomically(path, content):
  """Replaces `path` with `content` (str or bytes) through a temporary file in the same folder."""
  temporary = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
  try:
    with tf.io.gfile.GFile(temporary, "wb" if isinstance(content, bytes) else "w") as f:
      f.write(content)
    tf.io.gfile.rename(temporary, path, overwrite=True)
  except BaseException:  # e.g. a full disk: leave the old file, and no half-written temporary one
    if tf.io.gfile.exists(temporary):
      tf.io.gfile.remove(temporary)
    raise


class RunDir:
  """The layout of one run's folder; nothing is created until a writer asks."""

  def __init__(self, path):
    self.path = str(path)
    self.config_file = self._join(CONFIG_FILE)
    self.labels_file = self._join(LABELS_FILE)
    self.checkpoints = self._join(CHECKPOINT_DIR)
    self.history_file = self._join(HISTORY_FILE)
    self.eval_file = self._join(EVAL_FILE)
    self.tensorboard = self._join(TENSORBOARD_DIR)
    self.plot_file = self._join(PLOT_FILE)
    self.plan_file = self._join(PLAN_FILE)
    self.default_export = self._join(EXPORT_DIR)

  def _join(self, name):
    return os.path.join(self.path, name)

  def __str__(self):
    return self.path

  @contextlib.contextmanager
  def exclusive(self):
    """Holds the run dir for this process while training, so that two runs never write one folder.

    Local folders get an OS lock (fcntl.flock), which the OS drops when the process ends, however it ends:
    a killed run never blocks its own resume. Object stores (gs://) have no locks: there the caller must
    make sure one job uses the folder (a warning says so). A folder this hold created and left with nothing but
    its lock (a run refused before it wrote anything) is removed again.
    """
    if "://" in self.path:
      print(f"note: {self.path} cannot be locked (object store): make sure no other run uses it", flush=True)
      yield
      return
    created = not os.path.isdir(self.path)
    os.makedirs(self.path, exist_ok=True)
    path = self._join(LOCK_FILE)
    with open(path, "a+", encoding="utf-8") as lock:
      try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        raise RunDirBusyError(f"{self.path} is in use by another run ({holder}): wait for it to end, or use "
                              "another --model_dir.") from None
      lock.seek(0)
      lock.truncate()
      lock.write(f"pid {os.getpid()} on {socket.gethostname()}")
      lock.flush()
      try:
        yield
      finally:
        if created and os.listdir(self.path) == [LOCK_FILE]:  # removed while still locked: no run can be in it
          os.remove(path)
          os.rmdir(self.path)
        fcntl.flock(lock, fcntl.LOCK_UN)

  def remove_unfinished_saves(self):
    """Deletes the temporary folders a save killed midway leaves (TensorFlow's ckpt-N_temp/, Orbax's
    ckpt_N.orbax-checkpoint-tmp-*/); returns their names."""
    if not tf.io.gfile.isdir(self.checkpoints):
      return []
    leftovers = [name.rstrip("/") for name in tf.io.gfile.listdir(self.checkpoints)
                 if any(form.unfinished(name) for form in FORMATS)]
    for name in leftovers:
      tf.io.gfile.rmtree(os.path.join(self.checkpoints, name))
    return leftovers

  def set_aside_incomplete(self):
    """Moves the checkpoints that are not complete and would stop a save at their step (an Orbax step folder
    without its metadata) into damaged/TIME/; returns ([their names], the folder), or ([], None)."""
    found = [path for form in FORMATS for path in form.in_the_way(self.checkpoints)] if tf.io.gfile.isdir(
        self.checkpoints) else []
    if not found:
      return [], None
    return [os.path.basename(path.rstrip("/")) for path in found], self.set_aside(found, into=DAMAGED_DIR)

  def worker_checkpoints(self, task_id):
    return os.path.join(self.path, WORKERS_DIR, str(task_id))

  def complete_checkpoints(self):
    """The checkpoints in the folder that are complete, oldest first: TensorFlow prefixes whose index and every
    data shard are there, and Orbax step folders with their metadata and commit marker."""
    if not tf.io.gfile.isdir(self.checkpoints):
      return []
    return [path for _, path in sorted(found for form in FORMATS for found in form.complete(self.checkpoints))]

  def latest_checkpoint(self):
    """The newest checkpoint prefix, or None: the one the state file names or, where the state file names one
    that is not there or is missing (a folder copied in part, a checkpoint deleted by hand), the newest complete
    one in the folder (repair_checkpoint_state points the state file at it before a run goes on)."""
    named, there = tf_prefixes.named_in_state_file(self.checkpoints)
    if there:
      return named
    complete = self.complete_checkpoints()
    return complete[-1] if complete else None

  def newest_first(self, latest=None):
    """`latest` (default: latest_checkpoint()), then the older complete checkpoints, newest first: where one cannot
    be read back, the next stands in."""
    latest = latest or self.latest_checkpoint()
    return [latest] + [path for path in reversed(self.complete_checkpoints()) if path != latest] if latest else []

  def new_checkpoints(self, timeout, poll_seconds=1.0):
    """Yields the newest checkpoint and then each newer one as it is saved, until none came for `timeout`
    seconds (an eval beside a training run)."""
    last, since = None, time.monotonic()
    while time.monotonic() - since < timeout:
      latest = self.latest_checkpoint()
      if latest and latest != last:
        last = latest
        yield latest
        since = time.monotonic()
      else:
        time.sleep(poll_seconds)

  def repair_checkpoint_state(self):
    """Points the state file at the newest complete checkpoint where it names one that is not there or is
    missing, so that a resumed run goes on from it and its rotation keeps every checkpoint there; returns a
    line saying so, or None when there was nothing to repair. A state file that names an older checkpoint than
    the folder holds is refused: going on from it would overwrite the newer ones."""
    named, there = tf_prefixes.named_in_state_file(self.checkpoints)
    complete = [path for path in self.complete_checkpoints() if tf_prefixes.owns(path)]  # the state file's
    if there:
      newer = [os.path.basename(prefix) for prefix in complete[complete.index(named) + 1:]] if named in complete else []
      if newer:
        named = os.path.basename(named)
        raise ValueError(f"{self.checkpoints}/{tf_prefixes.STATE_FILE} names {named}, but the folder holds newer "
                         f"checkpoints ({', '.join(newer)}), which a run from it would overwrite: move them out of the "
                         f"folder to go on from {named}, or delete the state file to go on from the newest.")
      return None
    if not complete:
      return None
    names = [os.path.basename(prefix) for prefix in complete]  # relative, as tf.train.CheckpointManager writes them
    write_atomically(os.path.join(self.checkpoints, tf_prefixes.STATE_FILE), tf_prefixes.state_file_text(names))
    said = f"names {os.path.basename(named)}, which is not there" if named else "is missing"
    return (f"{self.checkpoints}/{tf_prefixes.STATE_FILE} {said}: resuming from {names[-1]}, the newest complete "
            f"checkpoint (kept: {', '.join(names)})")

  def set_aside(self, prefixes, into=DIVERGED_DIR):
    """Moves the checkpoints `prefixes` (their index and data shards; a step folder whole) into `into`/TIME/, out
    of the way of a resume, and points the state file at the newest checkpoint left; returns the folder they went
    to."""
    folder = self._join(os.path.join(into, time.strftime("%Y%m%d-%H%M%S", time.gmtime())))
    tf.io.gfile.makedirs(folder)
    for prefix in prefixes:
      for path in format_of(prefix).files(prefix):
        tf.io.gfile.rename(path, os.path.join(folder, os.path.basename(path)))
    self.repair_checkpoint_state()
    return folder

  def checkpoint_settings(self, prefix):
    """The settings checkpoint `prefix` was saved with (config.yaml's dict), or None for a checkpoint of a
    version before they travelled in it (or one that cannot be read)."""
    text = format_of(prefix).settings(prefix)
    return yaml.safe_load(text) if text else None

  def _latest_settings(self):
    """(the newest checkpoint's name, the settings it carries), or (None, None)."""
    latest = self.latest_checkpoint()
    settings = self.checkpoint_settings(latest) if latest else None
    return (os.path.basename(latest), settings) if settings else (None, None)

  def read_config(self):
    """The run's resolved config as a dict (keys renamed since it was written under their new names, keys added
    since at their defaults): its config.yaml or, where that is missing, the settings its newest checkpoint
    carries (saying so); None when the folder holds no run."""
    if not tf.io.gfile.exists(self.config_file):
      checkpoint, settings = self._latest_settings()
      if settings is None:
        return None
      print(f"note: {self.config_file} is missing: the settings saved in {checkpoint} stand in for it", flush=True)
      return hparams.with_defaults(hparams.upgrade(settings))
    with tf.io.gfile.GFile(self.config_file) as f:
      text = f.read()
    checkpoint, settings = self._latest_settings()
    fix = "restore it from a copy of the run" + (
        f", or move it away to go on with the settings saved in {checkpoint}" if settings else "")
    try:
      saved = yaml.safe_load(text)
    except yaml.YAMLError as error:
      where = getattr(error, "problem_mark", None)
      at = f" at line {where.line + 1}" if where else ""
      raise ValueError(f"{self.config_file} is damaged (not YAML{at}: {getattr(error, 'problem', None) or error}); "
                       f"{fix}.") from None
    if not isinstance(saved, dict):
      raise ValueError(f"{self.config_file} is damaged (a {type(saved).__name__}, not the settings of a run); {fix}.")
    hparams.check_saved(saved, self.config_file, fix, reference=settings)
    return hparams.with_defaults(hparams.upgrade(saved))

  def write_config(self, config):
    tf.io.gfile.makedirs(self.path)
    write_atomically(self.config_file, config_text(config))

  def read_labels(self):
    """The class names the run was trained with, or None."""
    return read_labels(self.labels_file)

  def write_labels(self, names):
    tf.io.gfile.makedirs(self.path)
    write_atomically(self.labels_file, "".join(f"{name}\n" for name in names))
