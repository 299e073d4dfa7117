"""The plan of a run (main.py --plan): its arithmetic from given timings, and a tiny model planned, then trained."""

import json

import pytest

from effnetv2_tf import hparams
from effnetv2_tf.train import plan
from effnetv2_tf.train.schedule import run_plan
from tests.helpers import TINY_RUN, run_main


def _config(**values):
  # photos-b0 on 3,200 photos of 5 classes, 30 epochs: 3 stages (96, 144, 192 px) of 1,000 steps, batch 32,
  # evaluated at 192 px.
  config = hparams.override(hparams.get_config("photos-b0"), "model.num_classes=5,data.num_train_examples=3200")
  return hparams.resolve(hparams.with_values(config, {"eval.image_size": 192, **values}))


def _timings(batch):
  # A step of `batch` images: 0.1 s at 96 px, 0.4 s at 192 px (a + b * pixels through them: 0.225 s at 144 px).
  return [plan.StageTiming(size, batch, 10.0 + index, 0.1 + 0.3 * (size ** 2 - 96 ** 2) / (192 ** 2 - 96 ** 2), None,
                           2.3) for index, size in enumerate((96, 144, 192))]


def test_each_stage_takes_its_steps_at_the_slower_of_step_and_data_plus_its_compile_and_the_evals_on_top():
  config = _config()
  steps_per_epoch, schedule = run_plan(config)
  assert [(s.start_step, s.end_step, s.image_size) for s in schedule.stages] == [
      (0, 1000, 96), (1000, 2000, 144), (2000, 3000, 192)]
  # Timed at batch 16 (half the run's): the steps scale to batch 32. The data gives 200 img/s at every stage.
  made = plan.make_plan(config, schedule, steps_per_epoch, _timings(16), [200.0] * 3, engine="jax", platform="gpu",
                        replicas=4, evals=3, eval_examples=1000, price_per_hour=3.0)
  steps = [s.step_seconds for s in made.stages]
  assert steps == pytest.approx([0.2, 0.45, 0.8])
  assert [s.bound for s in made.stages] == ["step", "step", "step"]  # a batch read in 0.16 s: the data keeps up
  assert [s.seconds for s in made.stages] == pytest.approx([200 + 10, 450 + 11, 800 + 12])
  assert made.stages[0].batch_per_replica == 8 and made.stages[0].epochs == 10
  assert made.stages[1].images_per_second == pytest.approx(32 / 0.45)
  # Evals: 3 x 1,000 images at 192 px (the eval size), a third of a training image's 0.4 / 16 s each.
  assert made.eval_seconds == pytest.approx(3 * 1000 * 0.4 / 16 / 3)
  assert made.total_seconds == pytest.approx(1483 + 25)
  assert made.cost == pytest.approx(1508 / 3600 * 3.0)
  assert any("scaled from batch 16" in line for line in made.extrapolated)

  # Data slower than the step (100 img/s: 0.32 s a batch) bounds the first two stages; on the CPU the times add.
  slow = plan.make_plan(config, schedule, steps_per_epoch, _timings(32), [100.0] * 3, engine="tf", platform="gpu",
                        replicas=1, evals=1, eval_examples=None)
  assert [s.bound for s in slow.stages] == ["data", "data", "step"]
  assert [s.pace for s in slow.stages] == pytest.approx([0.32, 0.32, 0.4])
  assert slow.eval_seconds is None and any("not counted" in line for line in slow.extrapolated)
  cpu = plan.make_plan(config, schedule, steps_per_epoch, _timings(32), [100.0] * 3, engine="tf", platform="cpu",
                       replicas=1, evals=1, eval_examples=None)
  assert [s.pace for s in cpu.stages] == pytest.approx([0.42, 0.545, 0.72])

  # A run folder at step 1,500: half the second stage and the third are left, the first is done.
  resumed = plan.make_plan(config, schedule, steps_per_epoch, _timings(32), [None] * 3, engine="tf",
                           platform="gpu", replicas=1, evals=1, eval_examples=None, from_step=1500)
  assert [s.seconds for s in resumed.stages] == pytest.approx([0.0, 500 * 0.225 + 11, 400 + 12])

  lines = plan.table(made).splitlines()
  assert lines[0].split() == ["stage", "steps", "epochs", "size", "batch/replica", "compile", "step", "img/s",
                              "data", "img/s", "memory", "time"]
  assert lines[1].split()[:5] == ["1", "0-1000", "10", "96", "8"] and lines[1].endswith("3 min 30 s")
  assert "evals: 3 of 1,000 images, 25.0 s" in lines
  assert "total: 25 min 08 s on GPU, 4 replica(s); at 3 an hour, 1.26" in lines


def test_the_largest_batch_is_read_off_the_memory_line_through_two_batches():
  # 2 GiB of weights and state, 96 MiB an image; a 16 GiB device, 90% of it: (14.4 - 2) GiB / 96 MiB = 132 images,
  # 128 as a multiple of 8. Below 8 the count itself; 0 where the fixed part alone is too much.
  line = lambda per_replica: 2 * 2**30 + per_replica * 96 * 2**20  # noqa: E731
  assert plan.fitting_batch(line, 16 * 2**30) == (128, pytest.approx(2 * 2**30), pytest.approx(96 * 2**20))
  assert plan.fitting_batch(line, 3 * 2**30)[0] == 7 and plan.fitting_batch(line, 2 * 2**30)[0] == 0
  config = _config()
  _, schedule = run_plan(config)
  largest = plan.LargestBatch(192, 128, 0.016 * 512 / 256, 2 * 2**30, 96 * 2**20, 16 * 2**30)
  made = plan.make_plan(config, schedule, 100, _timings(32), [None] * 3, engine="jax", platform="gpu", replicas=4,
                        evals=1, eval_examples=None, largest=largest)
  assert ("largest batch at 192 px: 128 a replica (2.00 GiB + 96.0 MiB an image of 16.0 GiB; the run's 8), where the "
          "learning-rate rule (train.lr_base per 256 images) peaks at 0.032") in plan.table(made).splitlines()
  assert any("memory analysis" in line for line in made.measured)
  assert json.loads(made.to_json())["largest"]["per_replica"] == 128


def test_the_cpu_times_a_divisor_of_a_large_batch():
  assert [plan.timed_batch(batch, "cpu") for batch in (8, 64, 96, 4096, 4097)] == [8, 64, 48, 64, 17]
  assert plan.timed_batch(4096, "tpu") == 4096
  # Over 8 devices (a multiple of 8), and below a host's memory's bound: 4104 = 8 * 27 * 19.
  assert [plan.timed_batch(batch, "cpu", 64, replicas=8) for batch in (4096, 4104, 100)] == [64, 24, 100]
  assert plan.timed_batch(4096, "cpu", 32, replicas=8) == 32 and plan.timed_batch(4096, "cpu", 20, replicas=8) == 16


def test_a_run_compares_with_the_plans_stages_it_trains_whole(tmp_path):
  config = _config()
  _, schedule = run_plan(config)
  made = plan.make_plan(config, schedule, 100, _timings(32), [None] * 3, engine="tf", platform="cpu", replicas=1,
                        evals=1, eval_examples=None, from_step=500)
  path = tmp_path / "plan.json"
  path.write_text(made.to_json())
  # The first stage was planned from step 500 only: not comparable. Another schedule's stages are not either.
  assert plan.planned_stages(str(path), schedule) == pytest.approx({1: 225 + 11, 2: 400 + 12})
  _, other = run_plan(_config(**{"train.epochs": 20.0}))
  assert plan.planned_stages(str(path), other) == {}
  path.write_text("{")
  assert plan.planned_stages(str(path), schedule) == {}
  assert plan.planned_stages(str(tmp_path / "none.json"), schedule) == {}


@pytest.mark.one_stack  # the TF engine's loop as training runs it: the same on the TPU build
def test_a_tiny_run_planned_then_trained_says_each_stages_time_beside_the_plans(demo_records, tmp_path):
  run = tmp_path / "run"
  planned = run_main("--plan", "--mode=train", f"--model_dir={run}", f"--data_dir={demo_records}",
                     f"--hparam_str={TINY_RUN}", "--price_per_hour=1.5")
  assert planned.returncode == 0, planned.stderr[-3000:]
  assert sorted(path.name for path in run.iterdir()) == ["plan.json"]  # nothing trained
  saved = json.loads((run / "plan.json").read_text())
  stage, = saved["stages"]
  assert (stage["start_step"], stage["end_step"], stage["image_size"], stage["batch"]) == (0, 2, 40, 8)
  assert stage["step_seconds"] > 0 and stage["data_images_per_second"] > 0 and stage["bound"] == "step + data"
  assert saved["eval_examples"] == 100 and saved["evals"] == 1 and saved["cost"] == pytest.approx(
      saved["total_seconds"] / 3600 * 1.5)
  row = next(line for line in planned.stdout.splitlines() if line.split()[:2] == ["1", "0-2"])
  assert plan.duration(stage["seconds"]) in row
  assert "largest batch at 40 px: not searched: this engine has no memory analysis" in planned.stdout
  trained = run_main("--mode=train", f"--model_dir={run}", f"--data_dir={demo_records}", f"--hparam_str={TINY_RUN}")
  assert trained.returncode == 0, trained.stderr[-3000:]
  assert "stage 1 done in " in trained.stdout and f"(planned {stage['seconds']:.1f} s)" in trained.stdout


def test_plan_refusals_are_one_line(tmp_path):
  for args, line in (
      (["--plan", "--mode=eval"], "error: --plan plans a training run, not --mode=eval: drop one of them."),
      (["--price_per_hour=2"], "error: --price_per_hour is the machine's price for --plan: give it with --plan, "
                               "at 0 or more."),
      (["--plan", "--hparams=photos-b0", "--hparam_str=train.time_budget=5,model.num_classes=5,"
        "data.num_train_examples=100"], "error: train.time_budget 5 minutes: such a run takes its budget and fits "
                                        "its epochs to it as it starts; --plan projects a run of train.epochs: drop "
                                        "the budget to plan one of a number of epochs.")):
    done = run_main(*args, f"--model_dir={tmp_path / 'run'}")
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [line], done.stderr
  assert not (tmp_path / "run").exists()
