import numpy as np
import pytest
import tensorflow_datasets as tfds

from effnetv2_tf.data.pipeline import Preprocessing, train_dataset
from effnetv2_tf.data.sources import TFDSSource


def test_tfds_source_feeds_the_pipeline_without_downloading():
  with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
    dataset = train_dataset(TFDSSource("cifar10", "train"),
                            Preprocessing(32, "center_128", augment="randaug", randaug_magnitude=5), batch_size=4,
                            num_classes=10, seed=3)
    images, labels = next(iter(dataset))
  assert images.shape == (4, 32, 32, 3) and labels.shape == (4, 10)
  np.testing.assert_allclose(labels.numpy().sum(axis=1), 1.0)


def test_unprepared_tfds_dataset_is_a_clear_error(tmp_path):
  with pytest.raises(FileNotFoundError, match="'cifar10'.*not prepared.*tfds build cifar10"):
    TFDSSource("cifar10", "train", data_dir=str(tmp_path)).examples()
