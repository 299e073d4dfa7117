"""The TPU runtime's environment, prepared before TensorFlow loads (it is read once, at import).

  --tpu=local           a single-host TPU VM: the PJRT plugin (libtpu from the `libtpu` package).
  --tpu=NAME            a pod slice: TPU_NAME, and libtpu left to the slice's tpu-runtime service; the command
                        runs on worker 0 only (one client drives the whole slice).
  --tpu=grpc://HOST:PORT a TPU worker reached over the network; it must answer within a bounded time.
Values the user already exported are kept.
"""

import glob
import importlib.util
import os
import pathlib
import socket
import urllib.parse

PJRT_VARIABLES = ("NEXT_PLUGGABLE_DEVICE_USE_C_API", "TF_PLUGGABLE_DEVICE_LIBRARY_PATH", "TPU_NAME",
                  "TPU_LOAD_LIBRARY", "TPU_WORKER_HOSTNAMES", "TPU_WORKER_ID", "TPU_ACCELERATOR_TYPE")
CONNECT_TIMEOUT_SECONDS = 10.0


class TPUSetupError(RuntimeError):
  """The TPU runtime cannot be prepared or reached (one line saying what to do)."""


class TPUUnreachableError(TPUSetupError):
  """No TPU answered at the given name or address."""


def libtpu_path():
  """libtpu.so of the installed `libtpu` package (found without importing it), or None."""
  spec = importlib.util.find_spec("libtpu")
  if spec is None or not spec.submodule_search_locations:
    return None
  path = pathlib.Path(next(iter(spec.submodule_search_locations))) / "libtpu.so"
  return str(path) if path.is_file() else None


def has_tpu_devices():
  """TPU chips attached to this VM (v4: /dev/accel*, v5e/v5p and later: /dev/vfio/N)."""
  return bool(glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*"))


def is_grpc_address(tpu):
  return tpu.startswith("grpc://")


def prepare_environment(tpu, environ=os.environ):
  """Sets the runtime variables for `tpu` (see the module doc) in `environ`; returns lines to print."""
  if tpu in (None, ""):
    return []
  if tpu == "local":
    if not has_tpu_devices():  # libtpu would abort the process at import
      raise TPUSetupError("--tpu=local (or --use_tpu alone), but this machine has no TPU chips (/dev/accel*, "
                          "/dev/vfio): run on the TPU VM, or drop --use_tpu/--tpu to train here.")
    library = libtpu_path()
    if library is None:
      raise TPUSetupError("--tpu=local (or --use_tpu alone) needs libtpu: install the TPU route, pip install -e \".[tpu]\" "
                          "(see tpu/README.md).")
    environ.setdefault("NEXT_PLUGGABLE_DEVICE_USE_C_API", "true")
    environ.setdefault("TF_PLUGGABLE_DEVICE_LIBRARY_PATH", library)
    return [f"TPU runtime: PJRT on this host ({environ['TF_PLUGGABLE_DEVICE_LIBRARY_PATH']})"]
  environ.setdefault("TPU_LOAD_LIBRARY", "0")  # the slice's runtime service owns the chips, not this process
  if is_grpc_address(tpu):
    check_reachable(tpu)
    return [f"TPU runtime: remote worker {tpu}"]
  environ.setdefault("TPU_NAME", tpu)
  return [f"TPU runtime: pod slice {tpu}; run this command on worker 0 only (one client drives the whole "
          "slice; the other workers run the tpu-runtime service, see tpu/README.md)"]


def check_reachable(address, timeout=CONNECT_TIMEOUT_SECONDS):
  """Raises TPUUnreachableError unless something accepts a TCP connection at grpc://HOST:PORT within `timeout`
  (TensorFlow would wait for it without a bound)."""
  parsed = urllib.parse.urlsplit(address)
  if not parsed.hostname or not parsed.port:
    raise TPUSetupError(f"Bad TPU address {address!r}: expected grpc://HOST:PORT, e.g. grpc://10.0.0.2:8470.")
  try:
    with socket.create_connection((parsed.hostname, parsed.port), timeout=timeout):
      pass
  except OSError as error:
    reason = "timed out" if isinstance(error, socket.timeout) else (error.strerror or type(error).__name__)
    raise TPUUnreachableError(f"No TPU reachable at {address} ({reason} within {timeout:.0f} s): check the address, "
                        "that the TPU is READY (gcloud compute tpus tpu-vm list) and the firewall.") from None
