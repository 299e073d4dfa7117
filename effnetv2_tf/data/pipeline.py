"""The dataset a training stage or an evaluation asks for.

train_dataset(source, Preprocessing(image_size, normalization, augment=..., mixup_alpha=...), ...) gives a
stage's batches of (images, one-hot labels) at its size and regularization; eval_dataset one pass of the eval
transform. Records whose image does not decode
are skipped and counted (RecordCounts): bytes that are not a JPEG/PNG/GIF/BMP are filtered out, and a
truncated JPEG decodes with grey where data is missing. A label outside [0, num_classes), or
UNDECODABLE_IN_A_ROW records in a row without an image, stop with an error naming the file; data_error()
turns the errors the data can raise while iterating into one clear ValueError.
"""

import contextlib
import dataclasses

import tensorflow as tf

from effnetv2_tf.data import mixing
from effnetv2_tf.data.preprocessing import is_decodable, preprocess_for_eval, preprocess_for_train
from effnetv2_tf.data.seeds import EPOCH, MIXING, PIPELINE, derive_seed
from effnetv2_tf.data.sources import TFRecordSource


# Records in a row whose bytes are not an image before the data counts as broken (a data set in which
# nothing decodes would otherwise be filtered forever, silently).
UNDECODABLE_IN_A_ROW = 1000
DATA_ERROR = "data error: "  # starts the messages of the pipeline's own checks


@dataclasses.dataclass(frozen=True)
class Preprocessing:
  """What a training stage (or an evaluation) does to each example and batch.

  Attributes:
    image_size: side of the output images.
    normalization: the model's input normalization ("center_128" or "mean_std").
    dtype: image dtype (float32, or bfloat16 on TPU).
    augment: None, "randaug" or "autoaug" (training only).
    randaug_magnitude, randaug_layers: RandAugment's magnitude and ops per image.
    crop_area_min: smallest random crop as a fraction of the image (official 0.05).
    mixup_alpha, cutmix_alpha: batch mixing; 0 is off.
  """
  image_size: int
  normalization: str
  dtype: tf.DType = tf.float32
  augment: str | None = None
  randaug_magnitude: float = 0.0
  randaug_layers: int = 2
  crop_area_min: float = 0.05
  mixup_alpha: float = 0.0
  cutmix_alpha: float = 0.0

  def train_image(self, image, seed):
    return preprocess_for_train(image, seed, self.image_size, self.normalization, self.augment,
                                self.randaug_magnitude, self.randaug_layers, self.dtype, self.crop_area_min)

  def eval_image(self, image):
    return preprocess_for_eval(image, self.image_size, self.normalization, self.dtype)

  @property
  def mixes_batches(self):
    return self.mixup_alpha > 0 or self.cutmix_alpha > 0


class RecordCounts:
  """How many records this process skipped because their bytes are not an image."""

  def __init__(self):
    with tf.device("/cpu:0"):
      self.skipped_records = tf.Variable(0, dtype=tf.int64, trainable=False, name="records_skipped")
      self.skipped_in_a_row = tf.Variable(0, dtype=tf.int64, trainable=False, name="records_skipped_in_a_row")

  @property
  def skipped(self):
    return int(self.skipped_records.numpy())


def _decodable(counts):
  def keep(image, label, origin):
    def skip():
      in_a_row = counts.skipped_in_a_row.assign_add(1)
      with tf.control_dependencies([counts.skipped_records.assign_add(1), tf.debugging.Assert(
          in_a_row < UNDECODABLE_IN_A_ROW, [DATA_ERROR, in_a_row, "records in a row hold no image that decodes "
                                            "(the last in", origin, "): check the data"], summarize=1)]):
        return tf.constant(False)

    def found():
      with tf.control_dependencies([counts.skipped_in_a_row.assign(0)]):
        return tf.constant(True)
    return tf.cond(is_decodable(image), found, skip)
  return keep


def data_error(error, source):
  """A one-line ValueError for an error the data raised while `source` was read, or None when `error` is
  not about the data."""
  message = getattr(error, "message", str(error))
  if DATA_ERROR in message:
    detail = message[message.index(DATA_ERROR) + len(DATA_ERROR):].split("\n")[0]
    line = " ".join(detail.replace("] [", " ").strip("[] ").split())  # the Assert's pieces, joined
    return ValueError(line.replace(" :", ":").replace(" )", ")").replace("( ", "("))
  if "is required but could not be found" in message:
    return ValueError(f"The records of {source} lack the features an image classifier reads (image/encoded, "
                      "image/class/label): convert image folders with `python -m effnetv2_tf.data.convert`.")
  return None


@contextlib.contextmanager
def explained_data_errors(source):
  """Re-raises an error the data of `source` raises inside the block as data_error's one-line ValueError."""
  try:
    yield
  except tf.errors.InvalidArgumentError as error:
    explained = data_error(error, source)
    if explained is None:
      raise
    raise explained from None


def _check_label(num_classes):
  def check(image, label, origin):
    in_range = (label >= 0) & (label < num_classes)
    with tf.control_dependencies([tf.debugging.Assert(in_range, [
        DATA_ERROR, "label out of range in", origin, ": label", label, "is not in [0,", num_classes,
        "). Check model.num_classes and data.label_offset (ImageNet-layout records are 1-based)."])]):
      return tf.identity(image), tf.one_hot(label, num_classes)
  return check


def _training_examples(source, input_context, seed, shuffle_buffer, cache, counts, skip_examples):
  """(index, example) pairs of decodable training examples, epoch after epoch, with the first
  `skip_examples` left out. Each epoch's order is a function of (seed, epoch) alone, so a resume starts
  at its epoch without reading the epochs before it: only the epoch's length is counted (one pass over the
  records, without decoding), and at most one epoch's records are read and thrown away."""
  # Sources that list files shuffle them per epoch (a tensor seed); TFDS keeps its file order, and the
  # shuffle buffer mixes the examples.
  shuffles_files = isinstance(source, TFRecordSource) and not cache
  if shuffles_files:
    source.files()  # a pattern matching nothing fails here, in one line, not inside the epoch function
  # Unreadable files end early (a damaged shard must not stop a run), so a source of nothing but such files
  # would give empty epochs forever: make sure there is a record at all.
  with explained_data_errors(source):  # e.g. records of another layout
    readable = bool(list(source.examples(input_context).take(1)))
  if not readable:
    raise ValueError(f"No record of {source} could be read (are they TFRecord files?).")
  fixed = None if shuffles_files else source.examples(input_context)
  if cache:
    fixed = fixed.cache()

  def epoch(number):
    # The order must not depend on TF's global seed (and TF's seed helper cannot take a tensor seed when the
    # global seed is 0): this function's own graph gets none.
    tf.compat.v1.get_default_graph().seed = None
    epoch_seed = derive_seed(seed, EPOCH, number)
    examples = source.examples(input_context, seed=epoch_seed, shuffle=True) if shuffles_files else fixed
    return examples.shuffle(shuffle_buffer, seed=epoch_seed).filter(_decodable(counts))

  first_epoch, length = 0, 0
  if skip_examples:
    length = int(source.examples(input_context).filter(_decodable(RecordCounts())).reduce(
        tf.constant(0, tf.int64), lambda count, _: count + 1))
    if length == 0:
      raise ValueError(f"No record of {source} holds an image that decodes: check the data.")
    first_epoch, skip_examples = divmod(skip_examples, length)
  dataset = tf.data.Dataset.range(first_epoch, tf.int64.max).flat_map(epoch)
  return dataset.enumerate(start=first_epoch * length).skip(skip_examples)


def _replica_share(batch_size, input_context):
  """(examples per replica batch, batches per step) of one input pipeline: each step takes one batch per
  replica, and a pipeline feeds num_replicas / num_pipelines replicas."""
  if input_context is None:
    return batch_size, 1
  return (input_context.get_per_replica_batch_size(batch_size),
          input_context.num_replicas_in_sync // input_context.num_input_pipelines)


def train_dataset(source, preprocessing, *, batch_size, num_classes, seed, input_context=None,
                  shuffle_buffer=16_384, cache=False, counts=None, skip_steps=0):
  """The batches of one training stage: random crop / flip / augmentation and the stage's mixing, shuffled,
  repeated, full batches only.

  Args:
    source: a sources.TFRecordSource or sources.TFDSSource.
    preprocessing: the stage's Preprocessing (size, augmentation, mixing strengths).
    batch_size: GLOBAL batch size; each input pipeline gets its replicas' share.
    num_classes: one-hot width; labels outside [0, num_classes) are an error.
    seed: order, augmentation and mixing are functions of it (an exact resume needs that); streams derive from
      it (seeds.derive_seed).
    input_context: tf.distribute.InputContext when called by distribute_datasets_from_function.
    shuffle_buffer: examples in the shuffle buffer.
    cache: cache the encoded records in memory after the first pass.
    counts: a RecordCounts to add to (skips reach the logs through it).
    skip_steps: steps of this stage already done (resume): their examples are skipped before decoding, and
      the rest comes out exactly as in an uninterrupted run.

  Returns:
    tf.data.Dataset of (images [B, S, S, 3] preprocessing.dtype, labels [B, num_classes] float32).
  """
  per_replica, batches_per_step = _replica_share(batch_size, input_context)
  skip_batches = skip_steps * batches_per_step
  pipeline_id = input_context.input_pipeline_id if input_context else 0
  dataset = _training_examples(source, input_context, seed, shuffle_buffer, cache, counts or RecordCounts(),
                               skip_batches * per_replica)
  # One random stream per input pipeline: each example's seed is drawn from it by the example's index.
  element_stream = tf.constant(derive_seed(seed, PIPELINE, pipeline_id), tf.int64)

  def preprocess(index, example):
    image, label, origin = example
    return preprocessing.train_image(image, tf.stack([element_stream, index])), label, origin

  dataset = dataset.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE).map(_check_label(num_classes))
  dataset = dataset.batch(per_replica, drop_remainder=True)
  if preprocessing.mixes_batches:
    mix_stream = tf.constant([derive_seed(seed, MIXING, pipeline_id), 0], tf.int64)
    dataset = dataset.enumerate(start=skip_batches).map(
        lambda step, batch: mixing.mix_batch(*batch, preprocessing.mixup_alpha, preprocessing.cutmix_alpha,
                                             tf.random.experimental.stateless_fold_in(mix_stream, step)),
        num_parallel_calls=tf.data.AUTOTUNE)
  return dataset.prefetch(tf.data.AUTOTUNE)  # tf.data keeps the order deterministic by default


def eval_dataset(source, preprocessing, *, batch_size, num_classes, input_context=None, counts=None, padded=False):
  """One pass over the eval examples: the eval transform at preprocessing's size.

  Args:
    source, batch_size, num_classes, input_context, counts: as for train_dataset.
    preprocessing: a Preprocessing; only its size, normalization and dtype matter.
    padded: every batch full (static shapes for XLA and TPUs) with a third element, the example weights, 1 for
      real examples and 0 for padding; after the last real example the padding goes on forever, so a
      distributed eval stops at its first step without a real example on any replica. Otherwise the last
      batch is kept, however short.

  Returns:
    tf.data.Dataset of (images, labels), plus weights [B] float32 when padded.
  """
  per_replica, _ = _replica_share(batch_size, input_context)
  dataset = source.examples(input_context).filter(_decodable(counts or RecordCounts()))
  dataset = dataset.map(lambda image, label, origin: (preprocessing.eval_image(image), label, origin),
                        num_parallel_calls=tf.data.AUTOTUNE).map(_check_label(num_classes))
  if padded:
    size = preprocessing.image_size
    padding = (tf.zeros((size, size, 3), preprocessing.dtype), tf.zeros((num_classes,)), tf.constant(0.0))
    dataset = dataset.map(lambda image, label: (image, label, tf.constant(1.0))).concatenate(
        tf.data.Dataset.from_tensors(padding).repeat())
  return dataset.batch(per_replica, drop_remainder=padded).prefetch(tf.data.AUTOTUNE)
