"""Stopped and resumed: a signal mid-stage, then a rerun, ends bit for bit where the uninterrupted run ends.

On the whole TPU-shaped path at once: bfloat16, steps_per_loop > 1, mixup and cutmix, dropout, a stage switch
and the padded eval -- on the default strategy with SIGTERM (the save at the end of a host loop), and under
MirroredStrategy over 2 logical CPUs with SIGKILL (restoring replicated state and skipping a distributed dataset).
Both without XLA, which would add half a minute of compiling to each of the six runs and nothing to what is
saved and restored (the XLA-compiled step trains in test_trainer's bfloat16 run; TensorFlow cannot compile a step
over logical CPU devices; on a TPU every replica is its own chip). What a second signal does is
test_preemption's; each signal's handling is the same for SIGTERM and SIGINT (test_preemption sends both).
"""

import json
import signal

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import checkpoint_weights, run_trainer, signal_at_step, trainer_command

# 20 steps of 8 images: stage 1 steps 0-10 at 32 px, stage 2 steps 10-20 at 40 px, 2 steps per host loop.
TPU_SHAPED = ("runtime.mixed_precision=bfloat16,runtime.steps_per_loop=2,runtime.checkpoint_steps=100,"
              "data.num_train_examples=160,mixing.mixup_max=0.4,mixing.cutmix_max=0.4,regularization.dropout_max=0.3,"
              "eval.batch_size=32")
STRATEGIES = [
    pytest.param([f"--hparam_str={TPU_SHAPED},runtime.jit_compile=false"], signal.SIGTERM, id="default-sigterm"),
    # Platform-independent once the default strategy has resumed on this build.
    pytest.param([f"--hparam_str={TPU_SHAPED},runtime.jit_compile=false", "--strategy=mirrored", "--logical_cpus=2"],
                 signal.SIGKILL, id="mirrored-2-sigkill", marks=pytest.mark.one_stack),
]


@pytest.mark.e2e
@pytest.mark.parametrize("args,signum", STRATEGIES)
def test_a_signal_in_stage_two_resumes_to_the_uninterrupted_run(demo_records, tmp_path, args, signum):
  whole = run_trainer(tmp_path / "whole", demo_records, *args, "--finish", timeout=600)
  assert whole["step"] == 20 and all(np.isfinite(whole["losses"]))
  assert whole["eval"]["examples"] == 100  # 4 batches of 32, the last padded: each image once
  names, expected = checkpoint_weights(tmp_path / "whole")
  assert len(names) > 100

  model_dir = tmp_path / "signalled"
  process, stderr = signal_at_step(trainer_command(model_dir, demo_records, *args), model_dir, 12, signum,
                                   last_step=20)
  if signum == signal.SIGTERM:  # saved at the end of the host loop it arrived in, not at a periodic step
    assert process.returncode == 75, stderr[-3000:]
    assert "Traceback" not in stderr
    stopped = int(stderr.strip().splitlines()[-1].split("at step ")[1].split(":")[0])
    assert stderr.strip().splitlines()[-1] == (f"stopped by SIGTERM at step {stopped}: checkpoint saved; rerun the "
                                               "same command to resume")
    assert 12 <= stopped < 20
    assert tf.train.latest_checkpoint(str(model_dir / "checkpoints")).endswith(f"ckpt-{stopped}")
    assert json.loads((model_dir / "history.jsonl").read_text().splitlines()[-1])["step"] == stopped
  else:  # no notice: the last checkpoint is stage 1's end
    assert process.returncode == -signal.SIGKILL
  resumed = run_trainer(model_dir, demo_records, *args, "--finish", timeout=600)
  assert "stage 2/2" in resumed["stdout"] and "stage 1/2" not in resumed["stdout"]  # continued, not restarted
  assert resumed["step"] == 20 and resumed["eval"] == whole["eval"]
  resumed_names, values = checkpoint_weights(model_dir)
  assert resumed_names == names
  for variable, a, b in zip(names, expected, values):
    np.testing.assert_array_equal(a, b, err_msg=variable)
