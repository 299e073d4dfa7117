"""Fine-tuning starts: official checkpoints, our own runs and presets, with a new classifier."""

import numpy as np
import pytest

from effnetv2_tf import hparams
from effnetv2_tf.model import create_model
from effnetv2_tf.run_dir import config_text
from effnetv2_tf.weights.official import CheckpointError
from effnetv2_tf.train.warm_start import warm_start
from tests.helpers import randomize, write_official_checkpoint


def test_official_checkpoint_with_another_class_count_gets_a_new_classifier(tmp_path):
  source = create_model("efficientnetv2-b0", classifier_activation=None)
  randomize(source, 1)
  prefix = write_official_checkpoint(tmp_path / "model", source)
  target = create_model("efficientnetv2-b0", num_classes=7)
  assert "classifier left as initialised" in warm_start(target, prefix)
  np.testing.assert_array_equal(target.get_layer("head").get_weights()[0], source.get_layer("head").get_weights()[0])


def test_our_run_starts_another_class_count_with_every_ema_weight_but_the_classifier(finished_run):
  """The finished run (5 classes, width and depth 0.25, bn_epsilon 0.5) starts a 3-class model: every layer but
  the classifier holds the run's EMA weights (test_modes shows load_run_model gives the trained model's)."""
  import yaml
  from effnetv2_tf.model import model_from_config
  from effnetv2_tf.run_dir import RunDir
  from effnetv2_tf.train.warm_start import load_run_model
  source = yaml.safe_load((finished_run / "config.yaml").read_text())["model"]
  target = model_from_config({**source, "num_classes": 3})
  untouched = target.get_layer("predictions").get_weights()
  checkpoint = RunDir(finished_run).latest_checkpoint()
  assert warm_start(target, f"{finished_run}/") == (f"{checkpoint}: our checkpoint, EMA weights, classifier "
                                                    "re-initialised (5 -> 3 classes)")
  ema, raw = load_run_model(checkpoint, source), load_run_model(checkpoint, source, use_ema=False)
  layers = [layer for layer in target.layers if layer.weights and layer.name != "predictions"]
  assert sum(len(layer.weights) for layer in layers) == len(target.weights) - 2 > 100  # all but kernel and bias
  for layer in layers:
    for ours, theirs in zip(layer.get_weights(), ema.get_layer(layer.name).get_weights()):
      np.testing.assert_array_equal(ours, theirs, err_msg=layer.name)
  assert any(not np.array_equal(a, b) for a, b in zip(ema.get_weights(), raw.get_weights()))  # EMA, not raw
  for ours, initial in zip(target.get_layer("predictions").get_weights(), untouched):
    np.testing.assert_array_equal(ours, initial)


def test_a_preset_starts_another_class_count_and_gives_its_model_settings(tmp_path):
  """A preset folder (--format=preset) as train.ft_init_ckpt: its model section is what the recipe takes (width,
  depth, bn_epsilon), and a 3-class model gets every weight but the classifier; another model is refused."""
  from effnetv2_tf import presets
  from effnetv2_tf.model import get_model_spec, model_from_config
  from effnetv2_tf.export.writer import write
  from effnetv2_tf.train.warm_start import source_run_model
  settings = {"name": "efficientnetv2-b0", "num_classes": 5, "width": 0.25, "depth": 0.25, "bn_epsilon": 0.5}
  source = model_from_config(settings)
  randomize(source, 3)
  write(source, get_model_spec("efficientnetv2-b0"), str(tmp_path / "export"), ("preset",), image_size=32,
        labels=list("abcde"), card=presets.Card(settings, "a test", "CC0-1.0"))
  folder = str(tmp_path / "export" / "preset")
  assert source_run_model(folder) == settings
  target = model_from_config({**settings, "num_classes": 3})
  untouched = target.get_layer("predictions").get_weights()
  assert warm_start(target, folder) == f"{folder}: a preset, classifier re-initialised (5 -> 3 classes)"
  for layer in target.layers:
    for ours, theirs, initial in zip(layer.get_weights(), source.get_layer(layer.name).get_weights(),
                                     untouched if layer.name == "predictions" else layer.get_weights()):
      np.testing.assert_array_equal(ours, initial if layer.name == "predictions" else theirs, err_msg=layer.name)
  with pytest.raises(CheckpointError, match="is a efficientnetv2-b0 checkpoint; fine-tuning efficientnetv2-b1"):
    warm_start(create_model("efficientnetv2-b1", width=0.25, depth=0.25, num_classes=3), folder)


def test_a_run_of_another_model_is_refused(tmp_path):
  (tmp_path / "checkpoints").mkdir()
  config = hparams.get_config("base").to_dict()
  config["model"].update(name="efficientnetv2-s", num_classes=10)
  (tmp_path / "config.yaml").write_text(config_text(config))
  (tmp_path / "checkpoints" / "ckpt-1.index").write_text("")
  with pytest.raises(CheckpointError, match="is a efficientnetv2-s checkpoint; fine-tuning efficientnetv2-b0"):
    warm_start(create_model("efficientnetv2-b0", width=0.25, depth=0.25, num_classes=3),
               str(tmp_path / "checkpoints" / "ckpt-1"))
