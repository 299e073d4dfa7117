"""The dataset builder on real photos converted to TFRecords, plus corrupt and mislabelled data."""

import numpy as np
import pytest
import tensorflow as tf

from effnetv2_tf.data.pipeline import Preprocessing, RecordCounts, data_error, eval_dataset, train_dataset
from effnetv2_tf.data.sources import TFRecordSource

COMMON = {"num_classes": 5}


def _source(records, split="train"):
  return TFRecordSource(str(records / f"{split}-*"))


@pytest.mark.parametrize("size", [32, 48])
def test_stage_sizes_and_batches(flower_records, size):
  dataset = train_dataset(_source(flower_records),
                          Preprocessing(size, "center_128", augment="randaug", randaug_magnitude=5.0, mixup_alpha=0.2),
                          batch_size=4, seed=1, **COMMON)
  images, labels = next(iter(dataset))
  assert images.shape == (4, size, size, 3) and labels.shape == (4, 5)
  np.testing.assert_allclose(tf.reduce_sum(labels, axis=1), 1.0, rtol=1e-6)


def test_seeded_training_batches_are_reproducible(flower_records):
  def first_batches():
    dataset = train_dataset(_source(flower_records),
                            Preprocessing(32, "center_128", augment="randaug", randaug_magnitude=9.0),
                            batch_size=4, seed=7, **COMMON)
    return [batch[0].numpy() for batch in dataset.take(3)]
  for a, b in zip(first_batches(), first_batches()):
    np.testing.assert_array_equal(a, b)


def _stage_batches(records, skip_steps, count):
  dataset = train_dataset(_source(records),
                          Preprocessing(32, "center_128", augment="randaug", randaug_magnitude=9.0, mixup_alpha=0.4),
                          batch_size=4, seed=3, skip_steps=skip_steps, **COMMON)
  return [(images.numpy(), labels.numpy()) for images, labels in dataset.take(count)]


# Batches of 4 over the 300 demo images (75 a epoch): a resume inside the first epoch, one that crosses into the
# second, and one 3 whole epochs + 8 in (those epochs are counted, not read).
@pytest.mark.parametrize("skip_steps, total", [(40, 45), (73, 80), (227, 240)])
def test_skip_steps_resumes_the_exact_stream(demo_records, skip_steps, total):
  whole = _stage_batches(demo_records, 0, total)
  resumed = _stage_batches(demo_records, skip_steps, total - skip_steps)
  assert len(resumed) == total - skip_steps
  for (images, labels), (again, again_labels) in zip(whole[skip_steps:], resumed):
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(labels, again_labels)


def test_each_epoch_has_its_own_order(demo_records):
  labels = [np.argmax(labels, -1) for _, labels in _stage_batches(demo_records, 0, 150)]
  assert not np.array_equal(np.concatenate(labels[:75]), np.concatenate(labels[75:]))


def test_resuming_data_in_which_nothing_decodes_is_an_error_not_a_hang(tmp_path):
  _write_records(tmp_path / "bad.tfrecord", [(b"not an image at all", label) for label in (1, 2, 3)])
  with pytest.raises(ValueError, match="holds an image that decodes"):
    train_dataset(TFRecordSource(str(tmp_path / "*.tfrecord")), Preprocessing(32, "center_128"), batch_size=2,
                  skip_steps=1, seed=0, **COMMON)


def test_eval_is_one_pass_over_every_record(flower_records):
  dataset = eval_dataset(_source(flower_records, "val"), Preprocessing(32, "center_128"), batch_size=3, **COMMON)
  labels = np.concatenate([batch[1].numpy() for batch in dataset])
  assert labels.shape == (10, 5) and (labels.sum(axis=0) == 2).all()  # 2 val images a class


@pytest.mark.parametrize("pipelines", [2, 3, 5])  # 4 shards: by file for 2 and 3, by element for 5
def test_input_contexts_see_disjoint_examples_that_cover_the_set(flower_records, pipelines):
  seen = []
  for pipeline_id in range(pipelines):
    context = tf.distribute.InputContext(num_input_pipelines=pipelines, input_pipeline_id=pipeline_id,
                                         num_replicas_in_sync=pipelines)
    records = _source(flower_records).examples(context)
    seen.append([image.numpy() for image, _, _ in records])
  flat = [image for part in seen for image in part]
  assert len(flat) == len(set(flat)) == 30  # 6 train images x 5 classes, each exactly once


def test_per_replica_batch_comes_from_the_global_batch(flower_records):
  context = tf.distribute.InputContext(num_input_pipelines=1, input_pipeline_id=0, num_replicas_in_sync=2)
  dataset = train_dataset(_source(flower_records), Preprocessing(32, "center_128"), batch_size=8,
                          input_context=context, seed=0, **COMMON)
  assert next(iter(dataset))[0].shape[0] == 4


def _write_records(path, payloads_and_labels):
  with tf.io.TFRecordWriter(str(path)) as writer:
    for payload, label in payloads_and_labels:
      writer.write(tf.train.Example(features=tf.train.Features(feature={
          "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[payload])),
          "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
      })).SerializeToString())


def _jpeg(value):
  return tf.io.encode_jpeg(np.full((40, 40, 3), value, np.uint8)).numpy()


def test_an_undecodable_image_is_skipped_and_counted(tmp_path):
  good = [(_jpeg(v), 1 + v % 3) for v in range(0, 250, 50)]
  _write_records(tmp_path / "mixed.tfrecord", good[:2] + [(b"not a jpeg at all", 1)] + good[2:])
  counts = RecordCounts()
  dataset = eval_dataset(TFRecordSource(str(tmp_path / "*.tfrecord")), Preprocessing(32, "center_128"),
                         batch_size=2, num_classes=3, counts=counts)
  assert sum(batch[0].shape[0] for batch in dataset) == 5
  assert counts.skipped == 1


def test_a_truncated_jpeg_decodes_instead_of_stopping(tmp_path):
  photo = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
  jpeg = tf.io.encode_jpeg(photo, quality=95).numpy()
  _write_records(tmp_path / "t.tfrecord", [(jpeg[:len(jpeg) * 2 // 3], 1), (_jpeg(10), 2)])
  counts = RecordCounts()
  dataset = eval_dataset(TFRecordSource(str(tmp_path / "*.tfrecord")), Preprocessing(32, "center_128"),
                         batch_size=2, num_classes=2, counts=counts)
  assert sum(batch[0].shape[0] for batch in dataset) == 2 and counts.skipped == 0


def test_png_records_decode_too(tmp_path):
  png = tf.io.encode_png(np.full((40, 30, 3), 200, np.uint8)).numpy()
  _write_records(tmp_path / "p.tfrecord", [(png, 1)])
  source, preprocessing = TFRecordSource(str(tmp_path / "*.tfrecord")), Preprocessing(16, "center_128")
  for dataset in (train_dataset(source, preprocessing, batch_size=1, num_classes=1, seed=0),
                  eval_dataset(source, preprocessing, batch_size=1, num_classes=1)):
    images, _ = next(iter(dataset))
    np.testing.assert_allclose(images, (200 - 128) / 128, atol=1e-5)


def test_a_truncated_shard_yields_its_intact_records(tmp_path):
  _write_records(tmp_path / "whole.tfrecord", [(_jpeg(v), 1) for v in (10, 20, 30)])
  data = (tmp_path / "whole.tfrecord").read_bytes()
  (tmp_path / "whole.tfrecord").write_bytes(data[:-20])  # cut into the last record
  dataset = eval_dataset(TFRecordSource(str(tmp_path / "*.tfrecord")), Preprocessing(32, "center_128"),
                         batch_size=8, num_classes=2)
  assert sum(batch[0].shape[0] for batch in dataset) == 2


def test_a_label_out_of_range_names_the_file(tmp_path):
  _write_records(tmp_path / "bad-labels.tfrecord", [(_jpeg(10), 1), (_jpeg(20), 9)])
  dataset = eval_dataset(TFRecordSource(str(tmp_path / "*.tfrecord")), Preprocessing(32, "center_128"),
                         batch_size=2, num_classes=3)
  with pytest.raises(tf.errors.InvalidArgumentError, match=r"(?s)label out of range in.*bad-labels.tfrecord") as raised:
    list(dataset)
  line = str(data_error(raised.value, "the eval files"))
  assert line.startswith("label out of range in ") and "bad-labels.tfrecord" in line and "\n" not in line
  assert "bad-labels.tfrecord: label 8 is not in [0, 3). Check model.num_classes" in line  # 9, 1-based


def test_a_stream_of_records_without_an_image_stops_with_one_line_instead_of_hanging(tmp_path, monkeypatch):
  from effnetv2_tf.data import pipeline
  monkeypatch.setattr(pipeline, "UNDECODABLE_IN_A_ROW", 20)
  _write_records(tmp_path / "text.tfrecord", [(b"not an image %d" % i, 1) for i in range(30)])
  dataset = train_dataset(TFRecordSource(str(tmp_path / "*.tfrecord")), Preprocessing(32, "center_128"),
                          batch_size=2, num_classes=3, seed=1)
  with pytest.raises(tf.errors.InvalidArgumentError) as raised:
    next(iter(dataset))
  line = str(data_error(raised.value, "the train files"))
  assert line.startswith("20 records in a row hold no image that decodes (the last in ") and "text.tfrecord" in line


@pytest.mark.parametrize("content", [b"this is not a TFRecord file at all, but some text", b"tiny"])
def test_files_that_are_not_tfrecords_are_named_as_such(tmp_path, content):
  """Unreadable files end early (a damaged shard must not stop a run); a source of nothing else is an error
  when the dataset is built, not an endless stream of empty epochs."""
  (tmp_path / "train-00000").write_bytes(content)
  with pytest.raises(ValueError, match=r"No record of .*train-\* could be read \(are they TFRecord files\?\)"):
    train_dataset(TFRecordSource(str(tmp_path / "train-*")), Preprocessing(32, "center_128"), batch_size=2,
                  num_classes=3, seed=1)


def test_records_without_the_expected_features_say_what_is_expected(tmp_path):
  with tf.io.TFRecordWriter(str(tmp_path / "train-00000")) as writer:
    writer.write(tf.train.Example(features=tf.train.Features(feature={
        "pixels": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"x"]))})).SerializeToString())
  with pytest.raises(ValueError, match=r"train-\* lack the features an image classifier reads \(image/encoded, "
                     r"image/class/label\): convert image folders with"):
    train_dataset(TFRecordSource(str(tmp_path / "train-*")), Preprocessing(32, "center_128"), batch_size=1,
                  num_classes=3, seed=1)


def test_no_matching_files_is_a_clear_error(tmp_path):
  with pytest.raises(FileNotFoundError, match="No TFRecord files match .*effnetv2_tf.data.convert"):
    TFRecordSource(str(tmp_path / "train-*")).files()
