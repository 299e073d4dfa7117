"""Evaluation with static shapes: full, padded batches count every example exactly once, compiled or not,
on one replica or two."""

import pytest
import tensorflow as tf

from tests.helpers import NO_XLA_ON_THIS_CPU, TPU_BUILD, run_trainer


@pytest.fixture(scope="module")
def thousand_records(tmp_path_factory):
  """1,000 small noise JPEGs with 1-based labels over 10 classes, in 3 shards of unequal size."""
  folder = tmp_path_factory.mktemp("thousand")
  rng = tf.random.Generator.from_seed(0)
  sizes = (170, 330, 500)
  index = 0
  for shard, size in enumerate(sizes):
    with tf.io.TFRecordWriter(str(folder / f"val-{shard:05d}-of-00003.tfrecord")) as writer:
      for _ in range(size):
        image = tf.cast(rng.uniform((24, 24, 3), 0, 255), tf.uint8)
        feature = {"image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[
                       tf.io.encode_jpeg(image).numpy()])),
                   "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[index % 10 + 1]))}
        writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
        index += 1
  return folder


EVAL = "model.num_classes=10,eval.batch_size=64,eval.image_size=32,data.eval_files=val-*,data.train_files=val-*"


# XLA cannot reach a second *logical* CPU device's variables (TF's known issue "tf.Variable on a different
# device"; the train step fails the same way there), so XLA is tested on one replica and 2 replicas without it.
@pytest.mark.parametrize("strategy, jit", [
    ("default", "false"),
    pytest.param("default", "true", marks=pytest.mark.skipif(TPU_BUILD, reason=NO_XLA_ON_THIS_CPU)),
    ("mirrored", "false")])
def test_1000_examples_at_batch_64_count_1000_and_equal_the_unpadded_accuracy(thousand_records, tmp_path, strategy,
                                                                               jit):
  result = run_trainer(tmp_path, thousand_records, "--evaluate_only", f"--strategy={strategy}", "--logical_cpus=2",
                f"--hparam_str={EVAL},runtime.jit_compile={jit}")
  assert result["replicas"] == (2 if strategy == "mirrored" else 1)
  assert result["examples"] == result["reference_examples"] == 1000  # 16 batches of 64: 24 padding slots
  assert result["top1"] == pytest.approx(result["reference_top1"], abs=1e-9)
  assert result["top5"] == pytest.approx(result["reference_top5"], abs=1e-9)
  assert 0.3 < result["top5"] < 0.8  # random weights on 10 classes: the counts are real, not all 0 or 1
