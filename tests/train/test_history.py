import os

from effnetv2_tf.train import history
from effnetv2_tf.train.schedule import ProgressiveSchedule


def test_rows_round_trip_and_the_plot_is_written(tmp_path):
  rows = [{"step": s, "loss": 2.0 - s / 10, "train_top1": s / 20} for s in range(1, 9)]
  history.write(str(tmp_path), rows)
  assert history.read(str(tmp_path)) == rows
  assert history.read(str(tmp_path / "missing")) == []
  stages = ProgressiveSchedule(8, 2, (64, 96)).stages
  path = history.plot(str(tmp_path), stages, [{"step": 8, "top1": 0.5}])
  assert path == os.path.join(str(tmp_path), history.PLOT_FILE)
  assert (tmp_path / history.PLOT_FILE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
