"""python main.py --doctor: the preflight on this CPU machine, its problem lines and exit codes."""

import os
import re
import socket
import subprocess

import pytest

from tests.helpers import ROOT, main_command, main_py, run_main
from effnetv2_tf import doctor


@pytest.mark.e2e
def test_the_demo_is_ready_and_its_compiled_step_is_timed(tmp_path):
  """In a process of its own, as a user starts it: it times TensorFlow's import (without its banner) and the first
  compiled step."""
  done = main_py("--doctor", f"--model_dir={tmp_path / 'run'}", timeout=600)
  assert done.returncode == 0, done.stdout + done.stderr[-2000:]
  out = done.stdout
  assert re.search(r"tensorflow: tensorflow(-tpu)? 2\.2[01]\.", out) and "1 CPU" in out and "cpu; no TPU" in out
  assert "precision: float32" in out and "xla: off" in out
  assert "train: 4 file(s) matching train-*, 75 records" in out and "writable; starts a new run" in out
  step = next(line for line in out.splitlines() if "train step:" in line)
  assert "efficientnetv2-b0 at 76 px, batch 16 (the run's batch 32 is timed at 16 on the CPU): compile" in step
  assert "img/s" in step and "peak host memory" in step
  assert out.strip().endswith("ready: no problems found")
  assert not any(text in done.stderr for text in ("oneDNN custom operations", "cuda drivers")), done.stderr
  assert not (tmp_path / "run").exists()  # the doctor writes nothing


@pytest.mark.e2e
@pytest.mark.one_stack
def test_another_hparam_set_is_timed_at_its_first_stage_size_and_a_cpu_batch(demo_records, tmp_path):
  # The paper's rule starts at the base size, 128 px (the official rule's first V2-S stage is 171 px). A quarter
  # of V2-S's width and depth: the same blocks (the full-size models' builds: test_efficientnet's parameter counts).
  done = run_main("--doctor", "--hparams=imagenet-s", f"--data_dir={demo_records}", f"--model_dir={tmp_path}",
                 "--hparam_str=model.num_classes=5,data.num_train_examples=300,progressive.rule=paper,"
                 "model.width=0.25,model.depth=0.25")
  assert done.returncode == 0, done.stdout + done.stderr[-2000:]
  assert "efficientnetv2-s at 128 px, batch 16 (the run's batch 4096 is timed at 16 on the CPU)" in done.stdout


def test_bad_data_and_model_dirs_are_one_line_each_and_exit_1(tmp_path):
  (tmp_path / "a_file").write_text("not a folder")
  done = run_main("--doctor", f"--data_dir={tmp_path / 'missing'}", f"--model_dir={tmp_path / 'a_file' / 'run'}")
  assert done.returncode == 1, done.stdout + done.stderr[-2000:]
  problems = [line for line in done.stdout.splitlines() if "PROBLEM" in line]
  assert len(problems) == 2 and all("; fix: " in line for line in problems)
  assert "is not a readable folder" in problems[0] and "is a file, not a folder" in problems[1]
  assert done.stdout.strip().endswith("2 problem(s)")


def test_bad_hparams_are_exit_2(tmp_path):
  done = run_main("--doctor", "--hparam_str=train.batch_size=x", f"--model_dir={tmp_path}")
  assert done.returncode == 2 and done.stderr.strip().splitlines()[-1].startswith("error: hparam 'train.batch_size'")


@pytest.mark.parametrize("installed, libtpu, expect", [
    ({}, None, "PROBLEM not installed"),
    ({"tensorflow": "2.21.0", "tensorflow-tpu": "2.20.0"}, "0.0.14", "tensorflow and tensorflow-tpu share one"),
    ({"tensorflow-tpu": "2.20.0"}, "0.0.52", "PROBLEM 0.0.52 with tensorflow-tpu"),
    ({"tensorflow": "2.19.0"}, None, "2.19.0 is not a supported version"),
])
def test_stack_problems_are_found_before_tensorflow_is_imported(monkeypatch, installed, libtpu, expect):
  versions = {**installed, "libtpu": libtpu}
  monkeypatch.setattr(doctor, "_version", versions.get)
  lines = []
  importable = doctor.check_stack(doctor.Report(lines.append), environ={})
  assert any(expect in line for line in lines), lines
  assert importable == (expect not in ("PROBLEM not installed", "PROBLEM 0.0.52 with tensorflow-tpu"))


@pytest.mark.parametrize("installed, expect", [
    ({"tensorflow-cpu": "2.21.0"}, "PROBLEM jax, jaxlib, orbax-checkpoint not installed"),
    ({"jax": "0.10.2", "jaxlib": "0.10.2", "orbax-checkpoint": "0.12.8", "tensorflow-tpu": "2.20.0"},
     "PROBLEM tensorflow-tpu beside jax"),
])
def test_jax_stack_problems_are_found_before_jax_is_imported(monkeypatch, installed, expect):
  from effnetv2_tf.engines.jax import doctor as jax_doctor
  monkeypatch.setattr(jax_doctor, "_version", installed.get)
  lines = []
  assert not jax_doctor.check_setup(doctor.Report(lines.append))
  assert any(expect in line and "; fix: " in line for line in lines), lines


@pytest.mark.e2e
@pytest.mark.jax
def test_the_jax_engine_on_two_processes_reports_each_hosts_devices_and_data_and_one_compiled_step(tmp_path):
  """As on a TPU slice of 2 hosts (here 2 processes x 4 CPU devices): every process checks itself and runs the
  one compiled step, in bfloat16 as on a TPU (the input pipeline's bfloat16 images into the JAX step; its loss
  finite, or the doctor would say so); process 0 reports everything, process 1 its devices and its share of the
  data. The demo's settings on a quarter of its model's width and depth: what is checked is the same, the
  compiling a fraction."""
  pytest.importorskip("jax", reason="the JAX route is not installed: pip install -e \".[jax]\"")
  with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
  processes = [subprocess.Popen(main_command("--doctor", "--engine=jax", f"--model_dir={tmp_path / 'run'}",
                                             "--hparam_str=runtime.mixed_precision=bfloat16,model.width=0.25,"
                                             "model.depth=0.25",
                                             f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2",
                                             f"--process_id={index}"),
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"})
               for index in (0, 1)]
  (first, first_err), (second, _) = [process.communicate(timeout=600) for process in processes]
  assert [process.returncode for process in processes] == [0, 0], first + first_err[-2000:]
  assert re.search(r"process 0: +jax: jax 0\.\d+\.\d+, jaxlib 0\.\d+\.\d+, orbax-checkpoint", first)
  for index, out in enumerate((first, second)):
    assert (f"process {index}:      devices: 4 cpu (cpu) in process {index} of 2; each batch split over a mesh "
            "of 8") in out
    assert re.search(rf"process {index}: +data: train: 4 file\(s\) matching train-\*, \d+ records in train-\S+; "
                     "each of the 2 processes reads 2 of them", out)
    assert out.strip().endswith(f"process {index}: ready: no problems found")
  assert "process 0:    precision: mixed_bfloat16 (runtime.mixed_precision=bfloat16)" in first
  assert "process 0:          xla: on (runtime.jit_compile=auto)" in first
  step = next(line for line in first.splitlines() if "train step:" in line)
  assert re.search(r"at 76 px, batch 16 .*: compile \d+\.\d s, step \d\.\d+ s, .* img/s, peak host memory", step)
  ours = [line for line in second.splitlines() if not line.startswith("[Gloo]")]  # gloo's lines: the CPU's own
  assert len(ours) == 4  # its devices, its 2 data lines, ready
  assert not (tmp_path / "run").exists()


def test_the_tpu_build_on_a_machine_without_tpus_runs_on_the_cpu(monkeypatch):
  monkeypatch.setattr(doctor, "_version", {"tensorflow-tpu": "2.20.0", "libtpu": "0.0.14"}.get)
  monkeypatch.setattr(doctor.pjrt, "has_tpu_devices", lambda: False)
  environ, lines = {}, []
  report = doctor.Report(lines.append)
  assert doctor.check_stack(report, environ) and report.problems == 0
  assert environ == {"TPU_LOAD_LIBRARY": "0"}


def test_an_unreachable_tpu_address_is_a_problem_line_not_a_hang():
  done = run_main("--doctor", "--tpu=grpc://127.0.0.1:9")
  assert done.returncode == 1, done.stdout + done.stderr[-2000:]
  assert "tpu: PROBLEM No TPU reachable at grpc://127.0.0.1:9" in done.stdout
