"""The training loop: strategies, stage switches, refits, host loops, bad input. (Resume after a signal:
test_tpu_shaped_path.)"""

import contextlib
import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import (MAIN_TINY, ROOT, TINY_RUN, TINY_TRAINER, TPU_BUILD, copy_run, result_of, run_main,
                           run_trainer, snapshot, tiny, trainer_command)


@pytest.mark.e2e
@pytest.mark.one_stack  # tf.distribute's replica arithmetic (synchronized BN, the global-batch loss) is Python, the
# same on every build; the TPU build's own steps are the default strategy's (test_tpu_shaped_path)
def test_mirrored_over_two_cpus_gives_the_default_strategy_losses(demo_records, tmp_path):
  single = run_trainer(tmp_path / "single", demo_records)
  mirrored = run_trainer(tmp_path / "mirrored", demo_records, "--strategy=mirrored", "--logical_cpus=2")
  assert (single["replicas"], mirrored["replicas"]) == (1, 2)
  assert single["step"] == mirrored["step"] == 6 and len(single["losses"]) == 6
  # Synchronized batch norm and the global-batch loss make 2 replicas x 4 images equal 1 x 8 images.
  np.testing.assert_allclose(mirrored["losses"], single["losses"], rtol=2e-4)
  np.testing.assert_allclose(mirrored["weights"], single["weights"], rtol=1e-3, atol=1e-4)


def _free_port():
  import socket
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.mark.e2e
@pytest.mark.gpu_path  # MultiWorkerMirrored: GPU clusters' strategy, which the TPU route never takes
def test_multi_worker_mirrored_with_two_local_processes_stops_together_on_one_workers_signal(demo_records, tmp_path):
  """Two workers train one run (each a replica); SIGTERM to worker 1 alone after step 4 stops both at the same
  step with a checkpoint (steps and saves are collectives: a worker going on alone would hang), exit 75; the same
  commands again finish the run, both workers holding the same weights."""
  workers = [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]

  def start():
    processes = []
    for index in range(2):
      env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": {"worker": workers},
                                                     "task": {"type": "worker", "index": index}})}
      processes.append(subprocess.Popen(
          trainer_command(tmp_path / "run", demo_records, "--strategy=multi_worker",
                          "--hparam_str=data.num_train_examples=160"),
          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT))
    return processes

  processes = start()
  history = tmp_path / "run" / "history.jsonl"
  deadline = time.time() + 300
  while time.time() < deadline and not (history.exists() and
                                        json.loads(history.read_text().splitlines()[-1])["step"] >= 4):
    time.sleep(0.05)
  processes[1].send_signal(signal.SIGTERM)
  stopped = [process.communicate(timeout=300)[1] for process in processes]
  assert [process.returncode for process in processes] == [75, 75], stopped[0][-3000:]
  # The same step on both. Not each one's last line: the worker that exits second may log the gRPC error of a
  # peer gone while TensorFlow shuts down.
  lines = [[line for line in err.splitlines() if line.startswith("stopped by SIGTERM at step")] for err in stopped]
  assert len(lines[0]) == 1 and lines[0] == lines[1], [err[-2000:] for err in stopped]
  results = []
  for process in start():
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    results.append(result_of(out))
  assert [r["replicas"] for r in results] == [2, 2] and [r["step"] for r in results] == [20, 20]
  np.testing.assert_allclose(results[0]["weights"], results[1]["weights"], rtol=1e-6)
  assert all(np.isfinite(results[0]["losses"]))


def test_paper_rule_changes_dropout_per_stage_keeping_optimizer_and_ema_state(demo_records, tmp_path, capsys):
  from effnetv2_tf import hparams
  from effnetv2_tf.engines.tf.engine import TFEngine
  from effnetv2_tf.train.trainer import Trainer
  from effnetv2_tf.tpu.strategy import resolve_runtime
  config = hparams.resolve(hparams.override(hparams.get_config("demo"), TINY_TRAINER + (
      ",progressive.rule=paper,regularization.dropout_min=0.0,regularization.dropout_max=0.8,progressive.stages=3,"
      "data.num_train_examples=72,runtime.deterministic=false,train.warmup_epochs=0.5")))
  trainer = Trainer(config, tmp_path / "run", demo_records, resolve_runtime("default"), TFEngine)
  assert [round(s.dropout_rate, 2) for s in trainer.schedule.stages] == [0.0, 0.4, 0.8]
  state = trainer.engine.state
  initial = [v.numpy().copy() for v in state.ema.shadows]
  trainer.train()
  assert trainer.step == 9 and int(state.optimizer.iterations.numpy()) == 9  # one optimizer across stages
  assert ("warning: the learning-rate warm-up takes 4 of the run's 9 steps (train.warmup_epochs 0.5 of 1 epochs): "
          "lower train.warmup_epochs for a run this short") in capsys.readouterr().err
  assert any(not np.array_equal(a, b.numpy()) for a, b in zip(initial, state.ema.shadows))
  # Measured on the model: the last stage's rate is what the dropout layer now drops.
  dropout = state.model.get_layer("top_dropout")
  assert dropout.rate == pytest.approx(0.8)
  dropped = dropout(tf.ones((1000, 64)), training=True).numpy()
  assert abs((dropped == 0).mean() - 0.8) < 0.02


class CountingEngine:
  """An engine.Engine without a framework: a step is a count, the loss falls with it, a save is a name. The stage
  loop driving it shows what it asks of any engine (a JAX one too), and costs no training."""

  is_chief, one_process, replicas, parameter_count, jit_compile, warmup_steps = True, True, 1, 0, False, 0
  compute_dtype = tf.float32

  def __init__(self, config, runtime, eval_source, counts):
    self.step = 0
    self.loops = []  # (stage index, the batches' image size, steps) of each host loop
    self.saves = []
    self.written = 0  # the saves finish_saves waited for

  def batches(self, dataset_fn):
    return iter(dataset_fn(tf.distribute.InputContext()))

  def train_loop(self, stage):
    def loop(batches, num_steps):
      images, _ = next(batches)
      self.loops.append((stage.index, images.shape[1], num_steps))
      self.step += num_steps
      return 1.0 / self.step, 0.5

    return loop

  def traces_again(self, config, stage):
    return False

  def evaluate(self, use_ema=True):
    return {"step": self.step, "top1": 0.5, "top5": 1.0, "examples": 100, "ema": use_ema}

  def saver(self, run_dir):
    return lambda step: (self.saves.append(step), f"{run_dir.checkpoints}/ckpt-{step}")[1]

  def finish_saves(self):
    self.written = len(self.saves)

  def agreed_signal(self, received):
    return received

  def restore(self, path):
    return self.step

  @contextlib.contextmanager
  def trial_steps(self):
    step = self.step
    yield
    self.step = step

  def largest_values(self):
    return {"weight": 1.0}

  def resize(self, config, total_steps, steps_per_epoch):
    pass

  def learning_rate(self, step):
    return 0.1

  def warm_start(self, path, use_ema=True):
    raise AssertionError("a run without train.ft_init_ckpt starts from no weights")

  def reset_momenta(self):
    raise AssertionError("a new run has no momenta to reset")

  def step_memory(self, stage, batch):
    return None  # no compiled step


@pytest.mark.one_stack
def test_the_stage_loop_drives_any_engine(demo_records, tmp_path, capsys):
  """The stage loop on an engine of plain Python (CountingEngine): each stage's batches at its size, and a plan
  hook's refit doubling a 3-stage run at step 2 moves the later stages where the refitted plan puts them (they
  once ran to the old plan's end)."""
  from effnetv2_tf import hparams
  from effnetv2_tf.run_dir import RunDir
  from effnetv2_tf.train.engine import Engine
  from effnetv2_tf.train.time_budget import BudgetRefit
  from effnetv2_tf.train.trainer import Trainer
  config = hparams.resolve(hparams.override(hparams.get_config("demo"), TINY_TRAINER + (
      ",progressive.stages=3,data.num_train_examples=72")))  # 9 steps, 3 a stage
  trainer = Trainer(config, tmp_path / "run", demo_records, None, CountingEngine)
  assert isinstance(trainer.engine, Engine)
  assert [(s.start_step, s.end_step) for s in trainer.schedule.stages] == [(0, 3), (3, 6), (6, 9)]
  doubled = hparams.resolve(hparams.override(config, "train.epochs=2.0"))
  calls = []

  def refit(step, pace):
    calls.append(step)
    return (doubled, "train.epochs 2: refitted") if len(calls) == 1 else (None, None)

  trainer.plan_hooks.append(BudgetRefit(refit))
  trainer.train()
  stages = [(s.start_step, s.end_step, s.image_size) for s in trainer.schedule.stages]
  assert [stage[:2] for stage in stages] == [(0, 6), (6, 12), (12, 18)] and trainer.step == 18
  assert calls[0] == 2 and "train.epochs 2: refitted" in capsys.readouterr().out
  assert trainer.engine.loops == [(index, size, 1) for index, (start, end, size) in enumerate(stages)
                                  for _ in range(start, end)]  # one step a host loop, fed at its stage's size
  assert trainer.engine.saves == list(range(2, 19, 2))  # runtime.checkpoint_steps 2, the stage ends among them
  assert trainer.engine.written == 9  # the last save was written before train() returned
  rows = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
  assert [row["step"] for row in rows] == list(range(1, 19))
  for row in rows:  # each step in the refitted stage holding it
    index = next(i for i, (start, end, _) in enumerate(stages) if start < row["step"] <= end)
    assert (row["stage"], row["image_size"]) == (index, stages[index][2])
  assert RunDir(tmp_path / "run").read_config()["train"]["epochs"] == 2.0  # a rerun resumes the refitted run


def _train_args(model_dir, data_dir, hparam_str=MAIN_TINY, *extra):
  return ["--mode=train", f"--model_dir={model_dir}", f"--data_dir={data_dir}", f"--hparam_str={hparam_str}", *extra]


def test_bad_input_gives_one_clear_line(demo_records, tmp_path):
  import shutil
  older = shutil.copytree(demo_records, tmp_path / "older_conversion")  # from before dataset.json
  (older / "dataset.json").unlink()
  cases = [
      (_train_args(tmp_path / "a", demo_records, "train.batchsize=8"), "error: Unknown hparam 'train.batchsize'"),
      (_train_args(tmp_path / "b", tmp_path / "empty"), "error: No TFRecord files match"),
      (_train_args(tmp_path / "c", demo_records, MAIN_TINY, "--use_tpu"),
       "error: --tpu=local (or --use_tpu alone), but this machine has no TPU chips"),
      (_train_args(tmp_path / "d", demo_records, MAIN_TINY + ",model.num_classes=1000"),
       'dataset.json: model.num_classes is 1,000 but the data has 5. Pass --hparam_str="model.num_classes=5"'),
      (_train_args(tmp_path / "e", older, MAIN_TINY + ",model.num_classes=1000"),
       'labels.txt names 5 classes but model.num_classes is 1000: set --hparam_str="model.num_classes=5"'),
  ]
  for args, message in cases:
    done = run_main(*args)
    assert done.returncode == 2 and message in done.stderr, done.stderr[-2000:]
  assert not any((tmp_path / name).exists() for name in "abde")  # a refused run leaves no folder behind


@pytest.mark.one_stack
def test_checkpoint_of_another_model_is_refused(finished_run, demo_records, tmp_path):
  run = copy_run(finished_run, tmp_path / "run")
  before = snapshot(run)
  done = run_main(*_train_args(run, demo_records, TINY_RUN + ",model.width=0.5"))
  assert done.returncode == 2 and "holds checkpoints of" in done.stderr.strip().splitlines()[-1]
  assert snapshot(run) == before and (run / "checkpoints" / "ckpt-2.index").exists()  # nothing was lost


@pytest.mark.e2e
@pytest.mark.parametrize("precision", ["bfloat16", pytest.param("float16", marks=pytest.mark.gpu_path)])
def test_mixed_precision_trains_on_the_cpu(demo_records, tmp_path, precision):
  """bf16 (the TPU setting) and fp16 with loss scaling (the GPU setting) run the same loop here; bf16's step
  compiled by XLA, as on a GPU or TPU, where this build has XLA for the CPU (the TPU build does not). One stage:
  one XLA compile (a stage switch under each precision: test_tpu_shaped_path's bfloat16, the fp16 clipping run)."""
  xla = precision == "bfloat16" and not TPU_BUILD
  result = run_trainer(tmp_path / precision, demo_records, f"--hparam_str=runtime.mixed_precision={precision},"
                       f"runtime.jit_compile={str(xla).lower()},progressive.stages=1")
  assert result["step"] == 6 and all(np.isfinite(result["losses"]))
  assert all(np.isfinite(result["weights"]))
  assert ("XLA compiling" in result["stdout"]) == xla


@pytest.mark.e2e
@pytest.mark.gpu_path
def test_gradient_clipping_means_the_same_under_loss_scaling(demo_records, tmp_path):
  """float16 gradients are loss-scaled until apply_gradients; clipping must not shrink them by the scale."""
  clip = "train.gradient_clip=0.01,train.optimizer=momentum,train.lr_base=1.0"
  plain = run_trainer(tmp_path / "float32", demo_records, f"--hparam_str={clip}")
  scaled = run_trainer(tmp_path / "float16", demo_records, f"--hparam_str={clip},runtime.mixed_precision=float16")
  assert scaled["start_kernels"] == plain["start_kernels"]  # the same start (float32 variables in both)
  # Kernels only: BN moving statistics also move without learning, and differ in float16 anyway.
  moved_plain = np.abs(np.subtract(plain["kernels"], plain["start_kernels"])).sum()
  moved_scaled = np.abs(np.subtract(scaled["kernels"], plain["start_kernels"])).sum()
  assert moved_plain > 0 and 0.5 < moved_scaled / moved_plain < 2.0


def test_each_stage_reports_what_tracing_its_step_cost(demo_records, tmp_path):
  """Without XLA the first stage traces the step and the second reuses it (same dropout); the stage lines
  say so. (Under XLA each stage's size compiles anew; the same line then says "tracing and XLA compiling".)"""
  hparam_str = MAIN_TINY + ",progressive.stages=2,data.num_train_examples=64,regularization.dropout_max=0.2"
  done = run_main(*_train_args(tmp_path, demo_records, hparam_str))
  assert done.returncode == 0, done.stderr[-3000:]
  lines = [line for line in done.stdout.splitlines() if " done in " in line]
  seconds = [float(line.split("of which ")[1].split(" s tracing the step")[0]) for line in lines]
  totals = [float(line.split(" done in ")[1].split(" s,")[0]) for line in lines]
  assert len(lines) == 2 and 1.0 < seconds[0] <= totals[0] and seconds[1] < seconds[0] / 2, lines


@pytest.mark.parametrize("pace, expected", [
    (None, 1),  # the stage's first loops: one step each, until the pace is known
    (0.01, 100),  # fast steps: steps_per_loop
    (0.2, 25),  # 5 s of steps
    (30.0, 1),  # slower than progress_seconds: one step
])
def test_a_host_loop_holds_at_most_progress_seconds_of_steps(pace, expected):
  from effnetv2_tf.train.trainer import host_loop_steps
  assert host_loop_steps(200, 1000, 1000, 100, 5.0, pace) == expected
  assert host_loop_steps(200, 1000, 1000, 100, 0.0, pace) == 100  # 0: steps_per_loop alone
  assert host_loop_steps(990, 1000, 1000, 100, 5.0, 0.01) == 10  # the stage's end (and a checkpoint)
  assert host_loop_steps(240, 1000, 250, 100, 5.0, 0.01) == 10  # the next checkpoint


@pytest.mark.e2e
@pytest.mark.one_stack
def test_progress_moves_within_a_long_host_loop(demo_records, tmp_path):
  """steps_per_loop 100 over a 96-step stage: the loops are cut to progress_seconds, so the log moves.

  A tiny step takes 10-50 ms here; 5 loops in 96 steps would need 0.1 s to hold over 30 steps (3 ms each).
  """
  hparam_str = tiny(data__num_train_examples=768, progressive__stages=1, runtime__steps_per_loop=100,
                    runtime__progress_seconds=0.1)
  done = run_main(*_train_args(tmp_path, demo_records, hparam_str))
  assert done.returncode == 0, done.stderr[-3000:]
  rows = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
  steps = [b["step"] - a["step"] for a, b in zip([{"step": 0}] + rows, rows)]
  assert sum(steps) == 96 and steps[:2] == [1, 1] and len(steps) >= 5, steps
  seconds = sorted(n * 8 / row["images_per_second"] for n, row in zip(steps[2:], rows[2:]))
  assert seconds[len(seconds) // 2] < 0.3, seconds  # the median loop: about 0.1 s (3x it, as at 0.3 s before)
  assert "run: about " in done.stdout and ", run " in done.stdout  # the estimate, and the plain lines' share
