"""python -m effnetv2_tf.publish: what cannot be published is one line, before anything is sent. No hub is
reachable here: the upload itself is documented (docs/export-and-predict.md), not faked."""

import sys

import pytest

from effnetv2_tf import presets, publish
from effnetv2_tf.model import create_model
from tests.helpers import call

pytestmark = pytest.mark.one_stack  # no TensorFlow of its own: the same on every build


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
  """A whole preset folder of a tiny model (what --format=preset writes), and one without its card."""
  model = create_model("efficientnetv2-b0", width=0.25, depth=0.25, num_classes=3, classifier_activation=None)
  card = presets.Card({"name": "efficientnetv2-b0", "num_classes": 3, "width": 0.25, "depth": 0.25}, "a test",
                      "CC0-1.0")
  whole, uncarded = (tmp_path_factory.mktemp(name) / "preset" for name in ("whole", "uncarded"))
  for folder in (whole, uncarded):
    presets.save(model, card, 32, "center_128", ["a", "b", "c"], str(folder))
  presets.write_card(str(whole), card, "reloaded: identical")
  return whole, uncarded


def _refused(*args):
  done = call(publish.main, *args)
  assert done.returncode == 2 and not done.stdout, done
  (line,) = done.stderr.strip().splitlines()
  return line


def test_what_cannot_be_published_is_one_line_before_anything_is_sent(preset, tmp_path, monkeypatch):
  whole, uncarded = preset
  assert _refused(tmp_path, "hf://me/model") == (
      f"error: {tmp_path} is not a preset (no config.json and model.weights.h5): export one with --format=preset "
      "and give EXPORT_DIR/preset.")
  assert _refused(uncarded, "hf://me/model").startswith(f"error: {uncarded} lacks metadata.json, README.md (")
  for destination in ("s3://bucket/model", "hf://me", "kaggle://me/model/keras"):
    assert _refused(whole, destination) == (
        f"error: {destination}: publish to hf://OWNER/REPO or kaggle://OWNER/MODEL/FRAMEWORK/VARIATION (e.g. "
        ".../keras/default).")
  for module, destination in (("huggingface_hub", "hf://me/model"), ("kagglehub", "kaggle://me/m/keras/default")):
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed, whether it is or not
    assert _refused(whole, destination) == (f"error: publishing to {destination.split(':')[0]}:// needs {module}, "
                                            f"which is not installed: pip install {module}.")


def test_without_credentials_the_hub_is_not_called(preset, tmp_path, monkeypatch):
  """Where huggingface_hub is installed (not in CI): no token on this machine is one line."""
  pytest.importorskip("huggingface_hub")
  monkeypatch.delenv("HF_TOKEN", raising=False)
  monkeypatch.setenv("HF_HOME", str(tmp_path))  # where the library looks for a saved token: none
  assert _refused(preset[0], "hf://me/model") == ("error: no Hugging Face token on this machine: run `hf auth "
                                                  "login` (or set HF_TOKEN), then publish again.")
