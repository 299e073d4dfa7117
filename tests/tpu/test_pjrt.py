"""The TPU runtime's environment, prepared before TensorFlow loads, and bounded connects."""

import socket
import time

import pytest

from tests.helpers import run_main
from effnetv2_tf.tpu import pjrt


def _closed_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]  # nothing listens there once the socket is closed


def test_a_single_host_tpu_vm_gets_the_pjrt_plugin(monkeypatch):
  monkeypatch.setattr(pjrt, "has_tpu_devices", lambda: True)
  monkeypatch.setattr(pjrt, "libtpu_path", lambda: "/site-packages/libtpu/libtpu.so")
  environ = {}
  lines = pjrt.prepare_environment("local", environ)
  assert environ == {"NEXT_PLUGGABLE_DEVICE_USE_C_API": "true",
                     "TF_PLUGGABLE_DEVICE_LIBRARY_PATH": "/site-packages/libtpu/libtpu.so"}
  assert "PJRT" in lines[0]
  kept = {"TF_PLUGGABLE_DEVICE_LIBRARY_PATH": "/mine/libtpu.so"}
  pjrt.prepare_environment("local", kept)
  assert kept["TF_PLUGGABLE_DEVICE_LIBRARY_PATH"] == "/mine/libtpu.so"  # what the user exported wins


def test_local_without_libtpu_or_without_chips_is_one_clear_error(monkeypatch):
  monkeypatch.setattr(pjrt, "has_tpu_devices", lambda: True)
  monkeypatch.setattr(pjrt, "libtpu_path", lambda: None)
  with pytest.raises(pjrt.TPUSetupError, match=r'needs libtpu: install the TPU route, pip install -e "\.\[tpu\]"'):
    pjrt.prepare_environment("local", {})
  monkeypatch.setattr(pjrt, "has_tpu_devices", lambda: False)
  with pytest.raises(pjrt.TPUSetupError, match="this machine has no TPU chips"):
    pjrt.prepare_environment("local", {})


def test_a_pod_slice_runs_on_worker_0_with_the_runtime_service_owning_the_chips():
  environ = {}
  lines = pjrt.prepare_environment("my-v4-32", environ)
  assert environ == {"TPU_NAME": "my-v4-32", "TPU_LOAD_LIBRARY": "0"}
  assert "run this command on worker 0 only" in lines[0]
  assert pjrt.prepare_environment(None, environ) == []


def test_a_grpc_address_with_nothing_listening_fails_fast():
  started = time.perf_counter()
  with pytest.raises(pjrt.TPUUnreachableError, match=r"No TPU reachable at grpc://127\.0\.0\.1:\d+"):
    pjrt.prepare_environment(f"grpc://127.0.0.1:{_closed_port()}", {})
  assert time.perf_counter() - started < pjrt.CONNECT_TIMEOUT_SECONDS + 1
  with pytest.raises(pjrt.TPUSetupError, match="Bad TPU address"):
    pjrt.check_reachable("grpc://no-port")


def test_main_with_an_unreachable_tpu_address_is_one_line_within_bounded_time():
  started = time.perf_counter()
  done = run_main(f"--tpu=grpc://127.0.0.1:{_closed_port()}")
  assert done.returncode == 2, done.stderr[-2000:]
  assert done.stderr.strip().splitlines()[-1].startswith("error: No TPU reachable at grpc://127.0.0.1:")
  assert time.perf_counter() - started < pjrt.CONNECT_TIMEOUT_SECONDS + 1
