"""Where examples come from: sharded TFRecords (ImageNet layout) or TFDS, behind one interface.

A source's `examples(input_context, seed)` yields (image, label, origin): image is JPEG bytes or a decoded
uint8 tensor, label a 0-based int64, origin the file (or TFDS split) it came from, for error messages.
Sharding across input pipelines (tf.distribute.InputContext) is by file when every pipeline gets at least
one file, else by element.
"""

import dataclasses
import functools

import tensorflow as tf

IMAGE_KEY = "image/encoded"
LABEL_KEY = "image/class/label"


def _shard(dataset, input_context):
  if input_context and input_context.num_input_pipelines > 1:
    return dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
  return dataset


@dataclasses.dataclass(frozen=True)
class TFRecordSource:
  """Sharded TFRecords with `image/encoded` (JPEG) and `image/class/label`.

  Attributes:
    file_pattern: a glob (local path or gs://...) or a list of them.
    label_offset: subtracted from stored labels: 1 for the ImageNet layout (1-based), 0 for 0-based.
  """
  file_pattern: str | tuple[str, ...]
  label_offset: int = 1

  def __str__(self):
    return str(self.file_pattern)

  def files(self):
    """The matching files, listed once per source (a glob on gs:// is a round trip): a run's epochs read the
    files that were there when it started."""
    return self._files

  @functools.cached_property
  def _files(self):
    patterns = [self.file_pattern] if isinstance(self.file_pattern, str) else list(self.file_pattern)
    files = sorted({f for pattern in patterns for f in tf.io.gfile.glob(pattern)})
    if not files:
      raise FileNotFoundError(
          f"No TFRecord files match {self.file_pattern!r}. Check --data_dir, or convert an image folder "
          "with `python -m effnetv2_tf.data.convert SRC_DIR OUT_DIR`.")
    return files

  def examples(self, input_context=None, seed=None, shuffle=False):
    files = self.files()
    num_pipelines = input_context.num_input_pipelines if input_context else 1
    dataset = tf.data.Dataset.from_tensor_slices(files)
    by_file = len(files) >= num_pipelines
    if by_file:
      dataset = _shard(dataset, input_context)
    if shuffle:
      dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)

    def read_file(filename):
      # A truncated shard ends where its damage starts instead of ending training.
      records = tf.data.TFRecordDataset(filename, buffer_size=8 * 1024 * 1024).ignore_errors()
      return records.map(lambda record: (record, filename))

    dataset = dataset.interleave(read_file, cycle_length=min(16, len(files)), num_parallel_calls=tf.data.AUTOTUNE,
                                 deterministic=seed is not None or not shuffle)
    if not by_file:
      dataset = _shard(dataset, input_context)
    return dataset.map(self._parse, num_parallel_calls=tf.data.AUTOTUNE)

  def _parse(self, record, filename):
    features = tf.io.parse_single_example(record, {IMAGE_KEY: tf.io.FixedLenFeature((), tf.string),
                                                   LABEL_KEY: tf.io.FixedLenFeature((), tf.int64)})
    return features[IMAGE_KEY], features[LABEL_KEY] - self.label_offset, filename


@dataclasses.dataclass(frozen=True)
class TFDSSource:
  """A prepared TFDS dataset (imagenet2012, cifar10, oxford_flowers102, tf_flowers, ...); never downloads.

  Attributes:
    name: TFDS name, e.g. "cifar10".
    split: TFDS split string, e.g. "train[:90%]".
    data_dir: where the prepared dataset lives (None: TFDS's default).
  """
  name: str
  split: str
  data_dir: str | None = None

  def __str__(self):
    return f"tfds:{self.name}/{self.split}"

  def examples(self, input_context=None, seed=None, shuffle=False):
    import tensorflow_datasets as tfds  # only TFDS users pay for the import
    read_config = tfds.ReadConfig(input_context=input_context, shuffle_seed=seed)
    try:
      dataset = tfds.load(self.name, split=self.split, data_dir=self.data_dir, as_supervised=True,
                          download=False, shuffle_files=shuffle, read_config=read_config)
    except (AssertionError, FileNotFoundError, tfds.core.registered.DatasetNotFoundError) as error:
      raise FileNotFoundError(
          f"TFDS dataset {self.name!r} (split {self.split!r}) is not prepared in data_dir={self.data_dir!r}: "
          f"build it once with `tfds build {self.name} --data_dir=...` ({error}).") from None
    origin = f"tfds:{self.name}/{self.split}"
    return dataset.map(lambda image, label: (image, tf.cast(label, tf.int64), origin))
