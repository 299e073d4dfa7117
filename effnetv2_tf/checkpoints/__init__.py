"""Our runs' checkpoints: the two formats a run folder's checkpoints/ holds, one module each.

  checkpoints/ckpt-STEP.index, .data-*   tf_prefixes: tf.train.Checkpoint prefixes (the TensorFlow engine's)
  checkpoints/ckpt_STEP/                 orbax_steps: Orbax step folders (the JAX engine's)

Both hold the model's weights and BN statistics, the EMA's averages of them, the optimizer's slots and step, the
dropout and stochastic-depth RNG states, and the run's settings (its config.yaml text), so that a
folder whose config.yaml is lost still says how its checkpoints were trained. Each module answers the same
questions (owns, exists, complete, unfinished, files, settings, averaged_values) for its own files; the readers
that take either (the run folder, exports, warm starts) ask format_of.
"""

import os

from effnetv2_tf.checkpoints import orbax_steps, tf_prefixes

FORMATS = (tf_prefixes, orbax_steps)


def format_of(path):
  """The format module of the checkpoint `path`: the one whose checkpoints are named like it (ckpt-STEP,
  ckpt_STEP), else the one it is a checkpoint of under another name (a TF prefix); None when neither."""
  return (next((form for form in FORMATS if form.owns(path)), None)
          or next((form for form in FORMATS if form.exists(path)), None))


def is_checkpoint(path):
  """Whether `path` is a checkpoint of either format (one of our runs' or, as a TF prefix, any other)."""
  return any(form.exists(path) for form in FORMATS)


def checkpoint_step(path):
  """The step a checkpoint of either format was saved at (ckpt-STEP, ckpt_STEP)."""
  return int(os.path.basename(path.rstrip("/")).replace("_", "-").rsplit("-", 1)[1])


def first_readable(candidates, read):
  """(path, read(path), [(path, error)]): the first of `candidates` (newest first) that `read` reads back, and
  those before it that could not be read, each with its error; (None, None, failed) when none could. A damaged
  file fails in its reader's own error class (TensorFlow, Orbax, tensorstore), so every error but a bug's counts."""
  failed = []
  for path in candidates:
    try:
      return path, read(path), failed
    except (TypeError, AttributeError, NameError):
      raise  # a bug, not a file
    except Exception as error:  # noqa: BLE001
      failed.append((path, error))
  return None, None, failed


def first_line(error):
  """An error's first line, for a line of ours that names it (without the pointer to TensorStore's details that
  Orbax appends: a bound method's repr)."""
  text = str(error).strip()
  return (text.splitlines()[0] if text else type(error).__name__).split(" See full TensorStore details")[0][:200]


def say_unreadable(unreadable, found, doing):
  """Prints a line for each checkpoint that could not be read back and names the one `doing` (e.g. "exporting")
  goes on with; raises the first error, as one line, when none could be read (`found` None). Eval and export
  write nothing into a run: what could not be read stays where it is."""
  for path, error in unreadable if found else []:
    print(f"{os.path.basename(path)} cannot be read back ({first_line(error)}): {doing} "
          f"{os.path.basename(found)}, the newest that can", flush=True)
  if found is None and unreadable:
    raise none_readable(unreadable, ValueError)


def none_readable(unreadable, keep, fix=""):
  """The error to raise when none of the checkpoints tried could be read back: the newest's own where it is a
  `keep` (a refusal that already says what to do), else one line naming it and its error, then `fix`."""
  path, error = unreadable[0]
  if isinstance(error, keep):
    return error
  return ValueError(f"{path} cannot be read back ({first_line(error)}), nor can an older checkpoint{fix}.")
