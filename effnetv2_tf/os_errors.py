"""What the machine refuses, as one line a user can act on: no space, no permission or a read-only file system,
no network for a gs:// path. Python raises these as OSError and TensorFlow's file systems as its own errors, so
they are recognised by their text as well."""

import errno

NO_SPACE = "No space left on device"
UNREACHABLE = "Error executing an HTTP request"  # TensorFlow's gs:// file system without a network
NOT_PERMITTED = {errno.EACCES, errno.EPERM, errno.EROFS}
NOT_PERMITTED_TEXTS = ("Permission denied", "Read-only file system", "Operation not permitted")


def os_error_line(error, where):
  """The line (without "error: ") for `error` when the machine, not the command, is what to fix; None otherwise.
  `where`: the folder the command writes into, named when the error does not name a path."""
  text = str(error)
  if UNREACHABLE in text:
    return (f"{' '.join(text.split())}: check this machine's network and the bucket's name and access "
            "(gcloud storage ls gs://BUCKET), then rerun.")
  if NO_SPACE in text:
    return (f"{NO_SPACE} while writing into {where}: free space and rerun the same command (complete checkpoints "
            "and logs are kept; an unfinished save is removed on resume).")
  if (isinstance(error, OSError) and error.errno in NOT_PERMITTED) or any(t in text for t in NOT_PERMITTED_TEXTS):
    path, reason = getattr(error, "filename", None), getattr(error, "strerror", None)
    if not path:  # TensorFlow's file systems say "PATH; Read-only file system"
      first = text.strip().splitlines()[0]
      named, said, why = first.partition("; ")
      path, reason = (named, why) if said and any(t in why for t in NOT_PERMITTED_TEXTS) else (where, first)
    return (f"{path}: {reason}: this user cannot write there (a read-only file system, or another user's "
            "folder): choose another folder, or change its permissions, and rerun.")
  return None
