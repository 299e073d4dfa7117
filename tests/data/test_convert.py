import numpy as np
import pytest
import tensorflow as tf

from effnetv2_tf.data import convert as convert_command
from effnetv2_tf.data.convert import convert
from effnetv2_tf.data.sources import TFRecordSource
from tests.helpers import call


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
  (folder / "dog" / "c.jpg").write_bytes(b"")
  summary = convert(tmp_path / "src", tmp_path / "out", shards=2)
  assert summary["written"] == {"train": 1} and summary["skipped"] == [str(folder / "dog" / "b.jpg")]
  assert summary["empty"] == [str(folder / "dog" / "c.jpg")]
  image, label, _ = next(iter(TFRecordSource(str(tmp_path / "out" / "train-*")).examples()))
  assert bool(tf.io.is_jpeg(image)) and int(label) == 0


@pytest.mark.one_stack
def test_command_line_reports_and_fails_clearly(flower_folder, tmp_path, capfd):
  import shutil
  photos = shutil.copytree(flower_folder, tmp_path / "photos")
  (photos / "val" / "rose" / "empty.jpg").write_bytes(b"")
  done = _convert(photos, tmp_path, "--shards", "2")
  assert done.returncode == 0, done.stderr
  for expected in ("5 classes", "train: 30 images", "skipped (empty files): 1\n    ", "rose/empty.jpg",
                   "skipped (not decodable): 0"):
    assert expected in done.stdout
  logged = capfd.readouterr().err  # TensorFlow's C++ lines, written below Python's stderr
  assert not any(line.startswith(("W0000", "I0000", "E0000")) for line in logged.splitlines()), logged
  # Into a pipe: a plain line at each tenth, no bar redrawn with carriage returns.
  lines = [line.split() for line in done.stderr.splitlines()]
  assert "\r" not in done.stderr and [count for split, count in lines if split == "train"] == [
      f"{n}/30" for n in range(3, 31, 3)]
  missing = _convert(tmp_path / "nope", tmp_path / "o")
  assert missing.returncode == 2 and "does not exist" in missing.stderr


def _image(path):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(tf.io.encode_jpeg(np.full((8, 8, 3), 100, np.uint8)).numpy())


def _convert(*args):
  """`python -m effnetv2_tf.data.convert ARGS`, in this process."""
  return call(convert_command.main, *args)


@pytest.mark.one_stack
def test_converting_into_an_earlier_conversion_is_refused_or_replaced_never_mixed(tmp_path):
  for name in ("a", "b", "c"):
    _image(tmp_path / "src" / "train" / "cat" / f"{name}.jpg")
    _image(tmp_path / "src" / "train" / "dog" / f"{name}.jpg")
  assert _convert(tmp_path / "src", tmp_path / "out", "--shards", "4").returncode == 0
  before = sorted(p.name for p in (tmp_path / "out").iterdir())
  again = _convert(tmp_path / "src", tmp_path / "out", "--shards", "2")
  assert again.returncode == 2  # 4 shards, labels.txt, dataset.json
  assert again.stderr.strip().splitlines()[-1].startswith(f"error: {tmp_path / 'out'} holds an earlier conversion (6 files")
  assert sorted(p.name for p in (tmp_path / "out").iterdir()) == before
  replaced = _convert(tmp_path / "src", tmp_path / "out", "--shards", "2", "--overwrite")
  assert replaced.returncode == 0 and "replaced an earlier conversion (6 files)" in replaced.stdout
  records = sum(1 for _ in TFRecordSource(str(tmp_path / "out" / "train-*")).examples())
  assert records == 6 and len(list((tmp_path / "out").glob("*.tfrecord"))) == 2


@pytest.mark.one_stack
def test_a_conversion_cut_short_says_so_and_its_rerun_replaces_its_shards(tmp_path, monkeypatch):
  """Ctrl-C half way: one line, only .partial shards (no labels.txt, no dataset.json: nothing a run would read);
  the same command again replaces them without --overwrite."""
  for name in ("a", "b", "c"):
    _image(tmp_path / "src" / "train" / "cat" / f"{name}.jpg")
    _image(tmp_path / "src" / "train" / "dog" / f"{name}.jpg")
  real, calls = convert_command._jpeg_bytes, []

  def interrupted(path, tf):
    calls.append(path)
    if len(calls) == 4:
      raise KeyboardInterrupt
    return real(path, tf)

  monkeypatch.setattr(convert_command, "_jpeg_bytes", interrupted)
  cut = _convert(tmp_path / "src", tmp_path / "out", "--shards", "2")
  assert cut.returncode == 130 and cut.stderr.strip().splitlines()[-1].startswith("interrupted: the shards written so")
  assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
      "train-00000-of-00002.tfrecord.partial", "train-00001-of-00002.tfrecord.partial"]
  monkeypatch.setattr(convert_command, "_jpeg_bytes", real)
  again = _convert(tmp_path / "src", tmp_path / "out", "--shards", "2")
  assert again.returncode == 0 and "replaced a conversion cut short (2 .partial shards)" in again.stdout
  assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
      "dataset.json", "labels.txt", "train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord"]
  assert sum(1 for _ in TFRecordSource(str(tmp_path / "out" / "train-*")).examples()) == 6


@pytest.mark.one_stack
def test_a_stray_image_beside_class_folders_is_refused_and_empty_classes_are_reported(tmp_path):
  _image(tmp_path / "src" / "train" / "cat" / "a.jpg")
  _image(tmp_path / "src" / "val" / "cat" / "b.jpg")
  _image(tmp_path / "src" / "train" / "stray.jpg")
  done = _convert(tmp_path / "src", tmp_path / "out")
  assert done.returncode == 2 and not (tmp_path / "out").exists()
  assert done.stderr.strip().splitlines()[-1] == (
      f"error: {tmp_path / 'src'}: 1 image(s) outside a class folder (train/stray.jpg): expected SPLIT/CLASS/image; "
      "move or remove them.")
  (tmp_path / "src" / "train" / "stray.jpg").unlink()
  (tmp_path / "src" / "train" / "dog").mkdir()
  _image(tmp_path / "src" / "train" / "bird" / "c.jpg")
  done = _convert(tmp_path / "src", tmp_path / "out")
  assert done.returncode == 0 and "warning: train/dog holds no image and was left out" in done.stdout
  assert (tmp_path / "out" / "labels.txt").read_text() == "bird\ncat\n"
  (tmp_path / "file").write_text("x")
  assert "Output " in _convert(tmp_path / "src", tmp_path / "file").stderr


def test_one_class_is_refused_before_anything_is_written(tmp_path):
  _image(tmp_path / "src" / "train" / "cat" / "a.jpg")
  _image(tmp_path / "src" / "val" / "cat" / "b.jpg")
  done = _convert(tmp_path / "src", tmp_path / "out")
  assert done.returncode == 2 and not (tmp_path / "out").exists()
  assert done.stderr.strip().splitlines()[-1] == (f"error: {tmp_path / 'src'}: one class (cat), and a classifier "
                                                  "needs at least 2: add a folder of photos per class "
                                                  "(SPLIT/CLASS/*.jpg).")


@pytest.mark.one_stack
def test_folders_named_like_images_and_symlink_loops_are_not_images(tmp_path):
  _image(tmp_path / "src" / "train" / "cat" / "a.jpg")
  (tmp_path / "src" / "train" / "cat" / "b.jpg").mkdir()
  (tmp_path / "src" / "train" / "loop").symlink_to(tmp_path / "src" / "train")
  (tmp_path / "src" / "train" / "cat" / "self.png").symlink_to(tmp_path / "src" / "train" / "cat" / "self.png")
  _image(tmp_path / "src" / "train" / "dog" / "d.jpg")
  done = _convert(tmp_path / "src", tmp_path / "out")
  assert done.returncode == 0, done.stderr[-2000:]
  assert "train: 2 images" in done.stdout


@pytest.mark.one_stack
def test_an_output_folder_this_user_cannot_write_is_one_line(tmp_path):
  for name in ("a", "b"):
    _image(tmp_path / "src" / "train" / "cat" / f"{name}.jpg")
    _image(tmp_path / "src" / "train" / "dog" / f"{name}.jpg")
  done = _convert(tmp_path / "src", "/sys/effnetv2_tests_records")  # /sys refuses new folders even to root
  assert done.returncode == 2 and done.stderr.strip().splitlines() == [
      "error: /sys/effnetv2_tests_records: Operation not permitted: this user cannot write there (a read-only file "
      "system, or another user's folder): choose another folder, or change its permissions, and rerun."]
