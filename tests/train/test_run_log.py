"""The run's JSONL logs and plot: round trips, atomic replacement, damaged lines."""

import json

from effnetv2_tf.run_dir import RunDir
from effnetv2_tf.train import run_log
from effnetv2_tf.train.schedule import ProgressiveSchedule


def test_rows_round_trip_and_the_plot_is_written(tmp_path):
  rows = [{"step": s, "loss": 2.0 - s / 10, "train_top1": s / 20} for s in range(1, 9)]
  run_dir = RunDir(tmp_path)
  run_log.write_rows(run_dir.history_file, rows)
  assert run_log.read_rows(run_dir.history_file) == rows
  assert run_log.read_rows(str(tmp_path / "missing.jsonl")) == []
  assert sorted(p.name for p in tmp_path.iterdir()) == ["history.jsonl"]  # no temporary file left
  stages = ProgressiveSchedule(8, 2, (64, 96)).stages
  path = run_log.plot(run_dir.plot_file, stages, rows, [{"step": 8, "top1": 0.5}])
  assert path == run_dir.plot_file and (tmp_path / "training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_half_written_row_is_dropped_with_a_warning_not_an_error(tmp_path, caplog):
  rows = [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5}]
  (tmp_path / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 3, "lo')
  assert run_log.read_rows(str(tmp_path / "history.jsonl")) == rows
  assert "history.jsonl line 3 is damaged and was dropped" in caplog.text


def test_without_a_terminal_progress_is_plain_lines_at_most_every_30_seconds(tmp_path, capsys, monkeypatch):
  clock = [100.0]
  monkeypatch.setattr(run_log.time, "monotonic", lambda: clock[0])
  log = run_log.RunLog(RunDir(tmp_path), interactive=False)
  stage = ProgressiveSchedule(40, 1, (64, 64)).stages[0]
  log.stage_started(stage, 1, 0)
  for step in range(1, 41):
    clock[0] += 2.0  # 2 s a loop: a line every 15 loops, and the stage's last
    log.host_loop({"step": step, "loss": 1.5, "train_top1": 0.5, "images_per_second": 64.0, "lr": 0.01}, stage)
  lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  step ")]
  assert [line.split("/")[0] for line in lines] == ["  step 15", "  step 30", "  step 40"]
  assert lines[0] == ("  step 15/40: loss 1.5000, top-1 0.500, 64.0 img/s, lr 0.01, stage 0:30 elapsed, "
                      "0:50 left")
  assert "\x1b" not in "".join(lines) and len(run_log.read_rows(str(tmp_path / "history.jsonl"))) == 40


def test_the_stage_s_time_left_is_at_the_trainer_s_pace_once_it_has_one(tmp_path, capsys, monkeypatch):
  """The stage's elapsed time includes tracing the step; the trainer's pace does not, and the run's time left
  is at that pace: a one-stage run says the same time left for both."""
  clock = [100.0]
  monkeypatch.setattr(run_log.time, "monotonic", lambda: clock[0])
  log = run_log.RunLog(RunDir(tmp_path), interactive=False)
  stage = ProgressiveSchedule(40, 1, (64, 64)).stages[0]
  log.stage_started(stage, 1, 0)
  clock[0] += 30.0
  log.host_loop({"step": 15, "loss": 1.5, "train_top1": 0.5, "images_per_second": 64.0, "lr": 0.01}, stage,
                64.0, run_seconds_left=25.0, stage_seconds_left=25.0)
  (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  step ")]
  assert line.endswith("stage 0:30 elapsed, 0:25 left, run 0:25 left")  # not 0:50 from 30 s per 15 steps


def test_the_run_estimate_is_said_once_with_a_warning_past_a_day(tmp_path, capsys):
  log = run_log.RunLog(RunDir(tmp_path), interactive=False)
  stage = ProgressiveSchedule(40, 1, (64, 64)).stages[0]
  log.stage_started(stage, 1, 0, run_seconds_left=3 * 3600 + 65)
  row = {"step": 40, "loss": 1.5, "train_top1": 0.5, "images_per_second": 90.0, "lr": 0.01}
  log.host_loop(row, stage, stage_images_per_second=64.0, run_seconds_left=30 * 3600)
  log.host_loop({**row, "step": 41}, stage, 64.0, 29 * 3600)
  out, err = capsys.readouterr()
  assert out.splitlines()[0].endswith("steps 0-40 (run: about 3:01:05 left)")
  assert out.count("run: about 30:00:00 of training left at the paces measured so far") == 1
  assert "64.0 img/s" in out and "90.0 img/s" not in out  # the stage's average, not the last loop's
  assert ", run 30:00:00 left" in out
  assert err.count("warning: at this pace the run takes about 1.2 more days on this machine") == 1


def test_an_eval_says_top_5_only_where_there_are_more_than_5_classes(tmp_path, capsys):
  result = {"step": 8, "top1": 0.46, "top5": 1.0, "examples": 100, "ema": True}
  for classes in (5, 6):
    run_log.RunLog(RunDir(tmp_path), is_chief=False, interactive=False, num_classes=classes).evaluation(result)
  five, six = capsys.readouterr().out.splitlines()
  assert five == "eval at step 8: top-1 0.4600 (100 images, EMA weights)"
  assert six == "eval at step 8: top-1 0.4600, top-5 1.0000 (100 images, EMA weights)"


def test_the_figure_draws_what_the_run_had_one_stage_or_several():
  import matplotlib.pyplot as plt
  rows = [{"step": s, "loss": 2.0 - s / 10, "train_top1": s / 20, "lr": 0.01 * s / 8} for s in range(1, 9)]
  short = ProgressiveSchedule(8, 1, (64, 64), randaug_magnitude=(0.0, 0.0), dropout_rate=(0.0, 0.0)).stages
  longer = ProgressiveSchedule(8, 2, (64, 96)).stages  # with RandAugment and dropout
  # Panels (the regularization's only where a stage has any) and the learning rate's and accuracy's twin axes.
  for stages, axes, title in ((short, 4, "One stage at 64 px"), (longer, 5, "2 progressive stages")):
    figure = run_log.figure_of(stages, rows)
    assert len(figure.axes) == axes and figure.axes[0].get_title() == title
    stairs = [patch for axis in figure.axes for patch in axis.patches]
    assert stairs and all(patch.get_data().baseline is None for patch in stairs)  # no edges down to 0
    assert {"learning rate", "train loss", "train top-1"} <= {
        line.get_label() for axis in figure.axes for line in axis.get_lines()}
    plt.close(figure)
