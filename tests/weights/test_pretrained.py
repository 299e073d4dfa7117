"""Official weights by name, downloaded from a server of ours on 127.0.0.1 (EFFNETV2_WEIGHTS_URL) into a Keras
cache of the test's own (KERAS_HOME): the first download, the cached second call, a download cut half way, a
damaged tarball, no network; create_model(weights=...) then holds the checkpoint's weights (EMA preferred:
tests/weights/test_official.py)."""

import numpy as np
import pytest

from effnetv2_tf.model import create_model
from effnetv2_tf.weights import pretrained
from effnetv2_tf.weights.pretrained import DownloadError, official_checkpoint
from tests.helpers import (Server, call, official_tarball, randomize, run_main, serving, write_official_checkpoint,
                           write_tf1_checkpoint)

pytestmark = pytest.mark.one_stack  # downloads and tarballs: the same on every TensorFlow build


@pytest.fixture
def cache(tmp_path, monkeypatch):
  monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
  return tmp_path / "keras" / pretrained.CACHE_SUBDIR


def small_tarball(tmp_path, folder_name="efficientnetv2-s"):
  return official_tarball(tmp_path, folder_name, lambda prefix: write_tf1_checkpoint(
      prefix, {"efficientnetv2-s/stem/conv2d/kernel": np.ones((3, 3, 3, 24), np.float32)}))


def test_downloaded_once_then_cached_and_unpacked_only_when_complete(tmp_path, cache, monkeypatch):
  with serving({"efficientnetv2-s.tgz": small_tarball(tmp_path)}, monkeypatch) as server:
    folder = official_checkpoint("efficientnetv2-s", "imagenet")
    assert folder == str(cache / "efficientnetv2-s" / "efficientnetv2-s")
    assert sorted(p.name for p in cache.iterdir()) == ["efficientnetv2-s"]  # the tarball gone, no .partial
    assert official_checkpoint("efficientnetv2-s", "imagenet") == folder
    assert server.requests == ["/v2/efficientnetv2-s.tgz"]  # the second call read the cache


def test_names_map_to_the_official_tarballs_and_refusals_name_what_exists():
  assert pretrained.tarball_name("efficientnetv2-b3", "imagenet21k-ft1k") == "efficientnetv2-b3-21k-ft1k.tgz"
  assert pretrained.tarball_name("efficientnetv2-xl", "imagenet21k") == "efficientnetv2-xl-21k.tgz"
  with pytest.raises(ValueError, match="efficientnetv2-xl has no official imagenet checkpoint"):
    pretrained.tarball_name("efficientnetv2-xl", "imagenet")
  with pytest.raises(ValueError, match="not efficientnet-b0 .V1: effnetv2_tf.weights.keras_applications"):
    pretrained.tarball_name("efficientnet-b0", "imagenet")


def test_a_download_cut_half_way_leaves_nothing_and_the_next_call_downloads(tmp_path, cache, monkeypatch):
  with serving({"efficientnetv2-s.tgz": small_tarball(tmp_path)}, monkeypatch) as server:
    server.cut = True
    with pytest.raises(DownloadError) as raised:
      official_checkpoint("efficientnetv2-s", "imagenet")
    message = str(raised.value)
    assert f"could not download {server.url}efficientnetv2-s.tgz: retrieval incomplete" in message
    assert "curl -O" in message and "\n" not in message
    assert not list(cache.iterdir())
    server.cut = False
    assert official_checkpoint("efficientnetv2-s", "imagenet").endswith("efficientnetv2-s")


def test_a_damaged_tarball_is_removed_and_a_damaged_cache_downloaded_again(tmp_path, cache, monkeypatch, capsys):
  good = small_tarball(tmp_path)
  with serving({"efficientnetv2-s.tgz": good[:len(good) // 2] + b"\0" * (len(good) // 2)}, monkeypatch) as server:
    with pytest.raises(DownloadError, match=r"efficientnetv2-s.tgz gave a damaged tarball \(.* bytes: .*\); "
                                            r"removed from the cache: rerun"):
      official_checkpoint("efficientnetv2-s", "imagenet")
    assert not list(cache.iterdir()) and len(server.requests) == 1
    (cache / "efficientnetv2-s.tgz").write_bytes(b"not a tarball")  # a damaged file already in the cache
    server.files["efficientnetv2-s.tgz"] = good
    assert official_checkpoint("efficientnetv2-s", "imagenet").endswith("efficientnetv2-s")
    assert "in the cache is damaged" in capsys.readouterr().out and len(server.requests) == 2


def test_no_network_is_one_line_naming_the_url_and_the_way_by_hand(cache, monkeypatch):
  server = Server({})
  server.close()  # nothing listens on its port any more
  monkeypatch.setenv(pretrained.URL_VARIABLE, server.url)
  with pytest.raises(DownloadError) as raised:
    official_checkpoint("efficientnetv2-b0", "imagenet21k")
  url = f"{server.url}efficientnetv2-b0-21k.tgz"
  assert str(raised.value).startswith(f"could not download {url}: ") and "Connection refused" in str(raised.value)
  assert f"fetch it by hand (curl -O {url} && tar xzf efficientnetv2-b0-21k.tgz) and pass the folder" in str(
      raised.value)


def test_create_model_with_weights_holds_the_checkpoints_weights(tmp_path, cache, monkeypatch):
  official = create_model("efficientnetv2-b0", classifier_activation=None)
  randomize(official, 1)
  tarball = official_tarball(tmp_path, "efficientnetv2-b0", lambda prefix: write_official_checkpoint(prefix, official))
  with serving({"efficientnetv2-b0.tgz": tarball}, monkeypatch):
    model = create_model("efficientnetv2-b0", weights="imagenet", classifier_activation=None)
    tuned = create_model("efficientnetv2-b0", weights="imagenet", num_classes=5)  # from the cache
  assert model.output.shape[-1] == 1000  # the checkpoint's class count
  assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), official.get_weights()))
  assert tuned.output.shape[-1] == 5  # a new classifier, every other weight the checkpoint's
  assert all(np.array_equal(a, b) for a, b in zip(tuned.get_weights()[:-2], official.get_weights()[:-2]))


def test_main_and_the_export_take_the_names_and_say_no_network_in_one_line(tmp_path, cache, monkeypatch):
  from effnetv2_tf.export import command as export
  server = Server({})
  server.close()
  monkeypatch.setenv(pretrained.URL_VARIABLE, server.url)
  trained = run_main("--model_dir", tmp_path / "run", "--hparam_str=train.ft_init_ckpt=imagenet21k")
  exported = call(export.main, "--official", "imagenet", "--model", "efficientnetv2-s", tmp_path / "export")
  for done, name in [(trained, "efficientnetv2-b0-21k.tgz"), (exported, "efficientnetv2-s.tgz")]:
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"error: could not download {server.url}{name}: "), done.stderr
  assert not (tmp_path / "export").exists()
