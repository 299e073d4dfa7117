import subprocess
import sys

import numpy as np
import tensorflow as tf

from effnetv2_tf.data.convert import convert
from effnetv2_tf.data.sources import TFRecordSource


def test_folder_round_trips_through_tfrecords(flower_folder, tmp_path):
  summary = convert(flower_folder, tmp_path, shards=3)
  classes = sorted(p.name for p in (flower_folder / "train").iterdir())
  assert summary["classes"] == classes
  assert (tmp_path / "labels.txt").read_text().split() == classes
  assert summary["written"] == {"train": 30, "val": 10} and summary["skipped"] == []
  assert len(list(tmp_path.glob("train-*-of-00003.tfrecord"))) == 3

  records = list(TFRecordSource(str(tmp_path / "val-*")).examples())
  labels = sorted(int(label) for _, label, _ in records)
  assert labels == sorted(list(range(5)) * 2)
  # Every record holds the original file's bytes, under its class's label.
  originals = {path.read_bytes(): classes.index(path.parent.name) for path in (flower_folder / "val").glob("*/*")}
  assert {bytes(image.numpy()): int(label) for image, label, _ in records} == originals


def test_sharding_is_deterministic(flower_folder, tmp_path):
  convert(flower_folder, tmp_path / "a", shards=3)
  convert(flower_folder, tmp_path / "b", shards=3)
  for shard in sorted((tmp_path / "a").glob("*.tfrecord")):
    assert shard.read_bytes() == (tmp_path / "b" / shard.name).read_bytes()


def test_png_is_reencoded_and_broken_files_are_skipped(tmp_path):
  folder = tmp_path / "src" / "train"
  (folder / "cat").mkdir(parents=True)
  (folder / "dog").mkdir(parents=True)
  (folder / "cat" / "a.png").write_bytes(tf.io.encode_png(np.zeros((8, 8, 3), np.uint8)).numpy())
  (folder / "dog" / "b.jpg").write_bytes(b"broken")
  summary = convert(tmp_path / "src", tmp_path / "out", shards=2)
  assert summary["written"] == {"train": 1} and summary["skipped"] == [str(folder / "dog" / "b.jpg")]
  image, label, _ = next(iter(TFRecordSource(str(tmp_path / "out" / "train-*")).examples()))
  assert bool(tf.io.is_jpeg(image)) and int(label) == 0


def test_command_line_reports_and_fails_clearly(flower_folder, tmp_path):
  done = subprocess.run([sys.executable, "-m", "effnetv2_tf.data.convert", str(flower_folder), str(tmp_path),
                         "--shards", "2"], capture_output=True, text=True, check=True)
  for expected in ("5 classes", "train: 30 images", "skipped (not decodable): 0"):
    assert expected in done.stdout
  assert "30/30" in done.stderr  # the progress bar
  missing = subprocess.run([sys.executable, "-m", "effnetv2_tf.data.convert", str(tmp_path / "nope"),
                            str(tmp_path / "o")], capture_output=True, text=True)
  assert missing.returncode == 2 and "does not exist" in missing.stderr
