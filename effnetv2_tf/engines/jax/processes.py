"""Several processes, one JAX run: the hosts of a TPU slice (or GPU nodes, or processes on one machine) train one
run together, each feeding its own devices from its shard of the data.

`join` connects the processes (jax.distributed.initialize) before JAX touches a device. On a Cloud TPU VM slice,
a GKE TPU JobSet, Slurm and Open MPI, JAX reads who is who from the environment; elsewhere the coordinator's
address, the process count and this process's index are given. Once joined, the processes run one SPMD program
over every device, so what each decides on its own must be the same everywhere: the settings, the checkpoint a
run resumes, the host loop at which a stop signal is acted on. `agree` checks the first two and `first_signal`
shares the third, with one small all-gather each.
"""

import hashlib
import os
import signal
import socket
import threading

import numpy as np

# How long a process waits for the others (and for the coordinator) to join, or to leave at its end, before it
# gives up with one line. Hosts of a slice start within seconds of each other; --join_seconds raises it.
JOIN_SECONDS = 60
# JAX's answer when it finds no cluster in the environment and none was given: the run is one process.
NO_CLUSTER = "coordinator_address should be defined"


def check_launch(coordinator_address=None, num_processes=None, process_id=None):
  """Refuses, in one line each, what would end JAX's start in a traceback or an abort: the three flags apart, an
  address without a port, a process index outside the count, and (on process 0, which hosts the coordinator) a
  port another process already listens on. Two processes given the same index cannot be told apart before they
  meet: JAX's coordinator stops them then."""
  given = (coordinator_address, num_processes, process_id)
  if None in given and any(value is not None for value in given):
    raise ValueError("--coordinator_address, --num_processes and --process_id go together: give all three (or none "
                     "on a Cloud TPU VM slice, a GKE JobSet, Slurm or Open MPI, where JAX finds them).")
  if coordinator_address is None:
    return
  host, _, port = coordinator_address.rpartition(":")
  if not host or not port.isdigit() or not 0 < int(port) < 65536:
    raise ValueError(f"--coordinator_address={coordinator_address} is not HOST:PORT: give process 0's host and a "
                     "free port, e.g. 10.0.0.2:8476.")
  if num_processes < 1 or not 0 <= process_id < num_processes:
    raise ValueError(f"--process_id={process_id} with --num_processes={num_processes}: the processes are numbered "
                     f"0 to {num_processes - 1}, each once, 0 on the coordinator's host.")
  if process_id == 0 and not _port_free(int(port)):
    raise ValueError(f"port {port} of --coordinator_address={coordinator_address} is in use on this host (another "
                     "run's coordinator?): choose another port for every process, or stop the process holding it.")


def _port_free(port):
  """Whether this host can listen on `port` (a port left in TIME_WAIT by an ended run counts as free)."""
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
      probe.bind(("", port))
    except OSError:
      return False
  return True


def join(coordinator_address=None, num_processes=None, process_id=None, seconds=JOIN_SECONDS):
  """Joins this process to the run's others (all three values, or none for JAX's detection); returns the
  process count (1 where no cluster is found). Must run before JAX touches a device.

  JAX's client ends the process from C++ (an abort and a stack trace) when the others do not come in time, so a
  watcher says so in one line first and exits with status 2."""
  import jax
  check_launch(coordinator_address, num_processes, process_id)
  jax.config.update("jax_cpu_collectives_implementation", "gloo")  # several processes on CPUs (a test bed)
  joined = threading.Event()

  def give_up():
    if not joined.wait(seconds):
      where = f"the coordinator at {coordinator_address}" if coordinator_address else "the coordinator JAX found"
      os.write(2, (f"error: process {'?' if process_id is None else process_id} could not join {where} and the "
                   f"other processes within {seconds:g} s: start every process with the same --coordinator_address "
                   "and --num_processes (process 0 on the coordinator's host), or raise --join_seconds for hosts "
                   "that start further apart.\n").encode())
      os._exit(2)

  threading.Thread(target=give_up, name="join-watcher", daemon=True).start()
  try:
    jax.distributed.initialize(coordinator_address, num_processes, process_id,
                               initialization_timeout=int(seconds) + 30)  # the watcher speaks first
  except ValueError as error:
    if NO_CLUSTER in str(error) and coordinator_address is None:
      return 1
    raise ValueError(f"the processes cannot start: {error}") from None
  finally:
    joined.set()
  return jax.process_count()


def _gathered(values):
  """Every process's `values` (int64 array), one row per process."""
  from jax.experimental import multihost_utils
  return np.asarray(multihost_utils.process_allgather(np.asarray(values, np.int64))).reshape(
      -1, np.size(values))


def _digest(text):
  return int.from_bytes(hashlib.sha256(text.encode()).digest()[:7], "big")


def agree(named_texts, what):
  """Raises ValueError on every process when the processes hold different texts ({name: text}: the settings'
  groups, the checkpoint to resume); `what` names them in the line. Every process must call it."""
  import jax
  if jax.process_count() == 1:
    return
  names = sorted(named_texts)
  rows = _gathered([_digest(named_texts[name]) for name in names])
  differ = [name for column, name in enumerate(names) if len(set(rows[:, column].tolist())) > 1]
  if differ:
    others = sorted({index for index, row in enumerate(rows) if (row != rows[0]).any()})
    raise ValueError(f"the processes hold different {what} ({', '.join(differ)}: process "
                     f"{', '.join(map(str, others))} against process 0): start every process with the same command "
                     "and data, on the same model_dir.")


def on_any(flag):
  """Whether `flag` is true on any process (every process must call it at the same point)."""
  import jax
  if jax.process_count() == 1:
    return bool(flag)
  return bool(_gathered([int(bool(flag))]).any())


def first_signal(received):
  """The stop signal every process acts on after this host loop: the one any process received (this one's
  `received`, a signal's name or None), so that all of them save the same step and stop. Every process must
  call it at the same point."""
  import jax
  if jax.process_count() == 1:
    return received
  codes = _gathered([signal.Signals[received].value if received else 0])[:, 0]
  return signal.Signals(int(max(codes))).name if codes.any() else None


def process_zero_first(work):
  """work()'s result, run by process 0 before the others run it (files they then find: the demo's records)."""
  import jax
  if jax.process_count() == 1:
    return work()
  from jax.experimental import multihost_utils
  result = work() if jax.process_index() == 0 else None
  multihost_utils.sync_global_devices("process 0 first")
  return result if jax.process_index() == 0 else work()
