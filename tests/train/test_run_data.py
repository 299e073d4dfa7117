"""The settings a run takes from its data: the converter's dataset.json, TFDS metadata."""

import json

import pytest

from effnetv2_tf import hparams
from effnetv2_tf.train.run_data import data_facts


def _settings(name, data_dir, hparam_str=""):
  """The resolved config and the lines of main.py's pipeline: the set, --hparam_str, what the data says."""
  recipe = hparams.override(hparams.get_config(name), hparam_str)
  recipe, lines = hparams.with_facts(recipe, data_facts(recipe, str(data_dir)),
                                     explicit=hparams.assigned_keys(hparam_str))
  return hparams.resolve(recipe), lines


def test_the_converter_records_its_counts(demo_records):
  written = json.loads((demo_records / "dataset.json").read_text())
  assert written == {"num_classes": 5, "splits": {  # the demo photos are 128 x 128
      "train": {"files": "train-*", "examples": 300, "image_size": 128},
      "val": {"files": "val-*", "examples": 100, "image_size": 128}}}


def _photos_of(folder, size):
  """A converted folder of 3 classes, 900 training photos whose median shorter side is `size`."""
  folder.mkdir()
  (folder / "dataset.json").write_text(json.dumps({"num_classes": 3, "splits": {
      "train": {"files": "train-*", "examples": 900, "image_size": size}}}))
  return folder


def test_the_photos_recipe_upsamples_small_photos_to_at_most_four_times_their_size(demo_records, tmp_path):
  config, lines = _settings("photos-b0", demo_records)  # 128-px photos: the model's sizes
  assert (config.progressive.image_size_min, config.progressive.image_size_max, config.eval.image_size) == (
      96, 192, 224)
  assert lines[-1] == ("progressive.image_size_max 192, eval.image_size 224: efficientnetv2-b0's own sizes; the "
                       f"photos' median shorter side is 128 px ({demo_records}/dataset.json)")
  tiny = _photos_of(tmp_path / "tiny", 32)  # 32-px photos: 4x, in 3 stages that progress
  config, lines = _settings("photos-b0", tiny)
  assert (config.progressive.image_size_min, config.progressive.image_size_max, config.eval.image_size) == (
      64, 128, 128)
  assert lines[-1] == ("progressive.image_size_max 128, eval.image_size 128: at most 4x the photos' size (more "
                       "costs steps without helping; efficientnetv2-b0 trains at 192 and evaluates at 224); the "
                       f"photos' median shorter side is 32 px ({tiny}/dataset.json)")
  config, _ = _settings("photos-b0", _photos_of(tmp_path / "fifty", 50))  # 200 px: train 192, evaluate at 200
  assert (config.progressive.image_size_max, config.eval.image_size) == (192, 200)
  config, _ = _settings("photos-b0", _photos_of(tmp_path / "large", 375))
  assert (config.progressive.image_size_min, config.progressive.image_size_max, config.eval.image_size) == (
      96, 192, 224)
  config, lines = _settings("photos-b0", tiny, "eval.image_size=160")  # a size given is kept
  assert config.eval.image_size == 160 and lines[-1].startswith("progressive.image_size_max 128: ")
  config, _ = _settings("photos-ft-b0", tiny)  # the official fine-tuning recipe keeps the model's sizes
  assert (config.progressive.image_size_max, config.eval.image_size) == (192, 224)


def test_a_photos_set_takes_the_class_and_example_counts_from_the_data(demo_records):
  config, lines = _settings("photos-ft-b0", demo_records)
  assert (config.model.num_classes, config.data.num_train_examples, config.data.eval_files) == (5, 300, "val-*")
  assert lines == [f"model.num_classes 5 ({demo_records}/dataset.json)",
                   f"data.num_train_examples 300 ({demo_records}/dataset.json)"]


def test_an_imagenet_set_on_a_folder_of_photos_is_refused_naming_both_values(demo_records):
  with pytest.raises(ValueError) as refused:
    _settings("imagenet-b0", demo_records)
  assert str(refused.value) == (
      f"{demo_records}/dataset.json: model.num_classes is 1,000 but the data has 5, data.num_train_examples is "
      "1,281,167 but the data has 300. Pass --hparam_str=\"model.num_classes=5,data.num_train_examples=300\", or "
      "use a set that takes them from the data (e.g. --hparams=photos-b0).")
  with pytest.raises(ValueError, match="model.num_classes is 3 but the data has 5"):
    _settings("photos-ft-b0", demo_records, "model.num_classes=3")  # given explicitly: refused too


def test_an_explicit_example_count_is_kept_and_the_eval_split_is_found(demo_records):
  config, lines = _settings("imagenet-b0", demo_records, "model.num_classes=5,data.num_train_examples=48")
  assert (config.data.num_train_examples, config.data.eval_files) == (48, "val-*")  # imagenet's validation-*
  assert lines == [f"data.eval_files val-*: the data's val split ({demo_records}/dataset.json)",
                   f"data.num_train_examples 48 as given, although {demo_records}/dataset.json counts 300: epochs "
                   "are 48 examples long"]


def test_a_folder_without_dataset_json_keeps_the_config(tmp_path):
  config, lines = _settings("imagenet-b0", tmp_path)
  assert lines == [] and config.model.num_classes == 1000


def test_data_of_one_class_is_refused_naming_its_file(tmp_path):
  from effnetv2_tf.data.facts import write_dataset_file
  write_dataset_file(tmp_path, 1, {"train": 12}, {"train": 128})  # as the converter wrote it before it refused
  with pytest.raises(ValueError, match=f"^{tmp_path / 'dataset.json'}: the data has 1 class, and a classifier needs "
                                       "at least 2: add a folder of photos per class and convert them again.$"):
    _settings("photos-b0", tmp_path)


def test_tfds_metadata_gives_the_class_count_without_the_data(tmp_path):
  # TFDS knows cifar10's label feature from its code; the empty folder holds no prepared data (no counts).
  config, lines = _settings("cifar10-ft", tmp_path, "model.num_classes=none")
  assert config.model.num_classes == 10 and lines == ["model.num_classes 10 (tfds:cifar10 metadata)"]
  assert config.data.num_train_examples == 50_000  # the set's own count stands
  with pytest.raises(ValueError, match="tfds:cifar10 metadata: model.num_classes is 100 but the data has 10"):
    _settings("cifar10-ft", tmp_path, "model.num_classes=100")
