"""The export formats: SavedModels that run without the package (bytes signature, TFSMLayer), ONNX and LiteRT in
their own runtimes, quantized LiteRT with its accuracy guard, Keras presets on TensorFlow and JAX."""

import json
import os
import pathlib
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import effnetv2_tf
from effnetv2_tf import predict, presets
from effnetv2_tf.export import command as export_command
from effnetv2_tf.export.formats import FLAVOURS, ExportError
from effnetv2_tf.export.saved_model import export_saved_models
from effnetv2_tf.export.writer import write
from effnetv2_tf.model import create_model, get_model_spec
from tests.helpers import ROOT, call, run_without_package, unit_images

SPEC = get_model_spec("efficientnetv2-s")  # center_128 normalization, eval size 384


@pytest.fixture(scope="module")
def tiny_model():
  """A quarter-size B0 of 4 classes, its BN statistics and offsets randomized (logits out)."""
  model = create_model("efficientnetv2-b0", width=0.25, depth=0.25, num_classes=4, classifier_activation=None)
  rng = np.random.default_rng(0)
  for v in model.weights:
    if v.path.endswith(("moving_mean", "beta")):
      v.assign(rng.normal(0, 0.2, v.shape))
  return model


@pytest.fixture(scope="module")
def exported(tiny_model, tmp_path_factory):
  model = tiny_model
  export_dir = tmp_path_factory.mktemp("export")
  paths = export_saved_models(model, SPEC, str(export_dir), image_size=64, top_k=3)
  return model, export_dir, paths


def test_export_runs_without_the_package_and_matches_keras(exported):
  model, _, paths = exported
  shapes = ((1, 64), (3, 97))
  calls = {f"{flavour}{batch}x{size}": (paths[flavour], "serving_default", "images", (batch, size))
           for flavour in FLAVOURS for batch, size in shapes}
  out = run_without_package(calls)
  for batch, size in shapes:
    x = unit_images(batch, size)
    expected = model((x * 255 - 128) / 128, training=False).numpy()
    classification = out[f"classification{batch}x{size}"]
    assert sorted(classification) == ["logits", "probabilities"]
    np.testing.assert_allclose(classification["logits"], expected, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(classification["probabilities"], tf.nn.softmax(expected), atol=1e-6)
    features = out[f"feature-vector{batch}x{size}"]["features"]
    assert features.shape == (batch, model.get_layer("avg_pool").output.shape[-1])


def test_bytes_signature_gives_the_keras_top_classes(exported, flower_photos):
  model, _, paths = exported
  loaded = tf.saved_model.load(paths["classification"])
  jpegs = [tf.io.encode_jpeg(photo).numpy() for photo in flower_photos[:2]]
  result = loaded.signatures["serving_bytes"](image_bytes=tf.constant(jpegs))
  assert result["classes"].shape == (2, 3) and result["scores"].shape == (2, 3)
  from effnetv2_tf.data.preprocessing import preprocess_for_eval
  images = tf.stack([preprocess_for_eval(tf.constant(j), 64, "center_128") for j in jpegs])
  expected = tf.math.top_k(tf.nn.softmax(model(images, training=False)), 3)
  np.testing.assert_array_equal(result["classes"], expected.indices)
  np.testing.assert_allclose(result["scores"], expected.values, atol=1e-5)


def test_tfsmlayer_wraps_the_feature_vector_for_fine_tuning(exported):
  _, _, paths = exported
  backbone = keras.layers.TFSMLayer(paths["feature-vector"], call_endpoint="serving_default")
  inputs = keras.Input((48, 48, 3))
  features = backbone(inputs)
  features = list(features.values())[0] if isinstance(features, dict) else features
  head = keras.Model(inputs, keras.layers.Dense(2)(features))
  head.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  history = head.fit(np.random.default_rng(0).uniform(0, 1, (8, 48, 48, 3)), np.arange(8) % 2, epochs=1, verbose=0)
  assert np.isfinite(history.history["loss"][0])


def test_a_non_empty_export_dir_and_a_file_are_refused(exported, tmp_path):
  model, export_dir, _ = exported
  with pytest.raises(ExportError, match="exists and is not empty: pass --overwrite"):
    write(model, SPEC, str(export_dir))
  (tmp_path / "a_file").write_text("mine")
  with pytest.raises(ExportError, match="Export path .*a_file is a file: give a folder"):
    write(model, SPEC, str(tmp_path / "a_file"), overwrite=True)
  assert (tmp_path / "a_file").read_text() == "mine"


def test_predict_names_the_top_classes_and_reports_a_corrupt_file(exported, tmp_path):
  from effnetv2_tf.labels import load_labels
  _, _, paths = exported
  demo = pathlib.Path(__file__).resolve().parents[1] / "effnetv2_tf" / "demo_data" / "val"
  photos = tmp_path / "photos"
  photos.mkdir()
  for path in sorted(demo.glob("*/*.jpg"))[:3]:
    (photos / path.name).write_bytes(path.read_bytes())
  (photos / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
  (tmp_path / "labels.txt").write_text("daisy\ndandelion\nrose\nsunflower\n")
  done = call(predict.main, paths["classification"], photos, "--labels", tmp_path / "labels.txt", "--top_k", 3)
  assert done.returncode == 0, done.stderr[-2000:]
  lines = done.stdout.strip().splitlines()
  assert len(lines) == 3 and all(line.count("(") == 3 for line in lines)
  assert all(any(name in line for name in ("daisy", "dandelion", "rose", "sunflower")) for line in lines)
  assert "broken.jpg: not an image (neither JPEG, PNG, GIF nor BMP)" in done.stderr
  assert "3 predicted, 1 could not be read" in done.stderr
  names = load_labels("imagenet1k")
  assert len(names) == 1000 and names[0].startswith("tench") and len(load_labels("imagenet21k")) == 21_842


def test_predict_says_why_a_file_is_unusable_and_predicts_tiny_images(exported, tmp_path):
  from PIL import Image
  _, _, paths = exported
  photos = tmp_path / "photos"
  photos.mkdir()
  for fmt in ("JPEG", "PNG"):  # valid 1x1 images are images
    Image.new("RGB", (1, 1), (200, 30, 30)).save(photos / f"one_pixel.{fmt.lower()}", fmt)
  real = next((ROOT / "effnetv2_tf" / "demo_data" / "val" / "rose").glob("*.jpg")).read_bytes()
  (photos / "cut.jpg").write_bytes(real[:400])  # the header and a few rows
  (photos / "notes.png").write_text("a text file with an image's name")
  (photos / "empty.gif").write_bytes(b"")
  (photos / "folder.jpg").mkdir()
  (photos / "loop_a.jpg").symlink_to(photos / "loop_b.jpg")
  (photos / "loop_b.jpg").symlink_to(photos / "loop_a.jpg")
  (photos / "gone.png").symlink_to(tmp_path / "deleted.png")
  done = call(predict.main, paths["classification"], photos)
  assert done.returncode == 0, done.stderr[-2000:]
  predicted = {line.split(": ")[0].rsplit("/", 1)[-1] for line in done.stdout.strip().splitlines()}
  assert {"one_pixel.jpeg", "one_pixel.png"} <= predicted
  assert "folder.jpg: a folder, not an image" in done.stderr and "loop_a.jpg: a symlink loop" in done.stderr
  assert f"gone.png: a broken link (to {tmp_path / 'deleted.png'})" in done.stderr
  assert "2 predicted, 7 could not be read" in done.stderr
  assert "notes.png: not an image (neither JPEG, PNG, GIF nor BMP)" in done.stderr
  assert "empty.gif: empty file" in done.stderr
  assert "cut.jpg: a damaged or truncated JPEG (400 bytes)" in done.stderr  # below the recoverable fraction

  for model, images, error in [
      (photos, photos, f"{photos} is not a SavedModel: give an export's classification folder (python main.py "
                       "--mode=export writes one)."),
      (paths["classification"], photos / "loop_a.jpg", f"no image to predict: {photos / 'loop_a.jpg'}: a symlink loop"),
      (paths["classification"], photos / "folder.jpg", f"no image to predict: {photos / 'folder.jpg'}: a folder "
                                                       "without images (.bmp, .gif, .jpeg, .jpg, .png)")]:
    refused = call(predict.main, model, images)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1] == f"error: {error}"
  # A path that cannot be read among others is reported, and the others predicted; nothing predicted is exit 1.
  mixed = call(predict.main, paths["classification"], photos / "loop_a.jpg", photos / "missing.jpg",
               photos / "one_pixel.png")
  assert mixed.returncode == 0 and "loop_a.jpg: a symlink loop" in mixed.stderr
  assert "missing.jpg: no such file or folder" in mixed.stderr and "1 predicted, 2 could not be read" in mixed.stderr
  unreadable = call(predict.main, paths["classification"], photos / "cut.jpg", photos / "notes.png")
  assert unreadable.returncode == 1 and "0 predicted, 2 could not be read" in unreadable.stderr


def _onnx_logits(path, images):
  import onnxruntime
  session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
  return session.run(["logits"], {"images": images.astype(np.float32)})[0], session


def _litert_logits(path, images):
  from ai_edge_litert.interpreter import Interpreter
  interpreter = Interpreter(model_path=str(path))
  interpreter.allocate_tensors()
  source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
  out = []
  for image in images.astype(np.float32):
    interpreter.set_tensor(source["index"], image[None])
    interpreter.invoke()
    out.append(interpreter.get_tensor(target["index"])[0].copy())
  return np.stack(out), source


def test_onnx_and_litert_give_keras_logits_in_their_own_runtimes(exported, tmp_path):
  """ONNX under onnxruntime (any batch and size) and float32 LiteRT under ai-edge-litert's interpreter (batch 1 at
  the export's size) give Keras' logits within 1e-4 of the logit scale, on real photos; the class names travel
  beside them and in the ONNX file."""
  model, _, _ = exported
  names = ["daisy", "dandelion", "rose", "sunflower"]
  written = write(model, SPEC, str(tmp_path / "out"), ("onnx", "litert"), image_size=64, labels=names)
  assert [item.name for item in written] == ["onnx", "litert"]
  assert all("logits within" in item.check for item in written)
  assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [
      "classification.onnx", "classification.tflite", "labels.txt"]
  assert (tmp_path / "out" / "labels.txt").read_text().splitlines() == names
  for batch, size in ((1, 64), (3, 97)):  # the ONNX dimensions are dynamic
    x = unit_images(batch, size)
    expected = model((x * 255 - 128) / 128, training=False).numpy()
    logits, session = _onnx_logits(tmp_path / "out" / "classification.onnx", x)
    assert logits.shape == (batch, 4) and np.abs(expected).max() > 0.01
    np.testing.assert_allclose(logits, expected, atol=1e-4 * np.abs(expected).max())
  assert [dim for dim in session.get_inputs()[0].shape] == ["batch", "height", "width", 3]
  assert session.get_modelmeta().custom_metadata_map["class_names"].splitlines() == names
  photos = np.stack([tf.image.resize(tf.io.decode_jpeg(path.read_bytes()), (64, 64)).numpy() / 255.0
                     for path in sorted((ROOT / "effnetv2_tf" / "demo_data" / "val").glob("*/*.jpg"))[::25]])
  expected = model((photos * 255 - 128) / 128, training=False).numpy()
  logits, source = _litert_logits(tmp_path / "out" / "classification.tflite", photos)
  assert list(source["shape"]) == [1, 64, 64, 3]
  np.testing.assert_allclose(logits, expected, atol=1e-4 * np.abs(expected).max())


@pytest.mark.one_stack  # the converter's float path runs on both builds (the test above)
def test_quantized_litert_variants_are_measured_and_one_that_loses_too_much_is_not_written(exported, tmp_path):
  """Each quantized variant's top-1 on labelled photos beside float32's; a drop over max_accuracy_drop (here
  negative, so that any variant exceeds it) is refused in one line naming both figures, and nothing is written;
  without labelled photos a quantized variant needs allow_accuracy_drop, and litert-int8 needs training photos."""
  from effnetv2_tf.export.photos import demo_photos
  from effnetv2_tf.export.writer import Photos
  model, _, _ = exported
  images = demo_photos(64, "center_128", count=10)
  labels = np.arange(10) % 4
  photos = Photos(images, labels, images[:6], "demo photos")
  written = write(model, SPEC, str(tmp_path / "ok"), ("litert-dynamic-int8", "litert-int8"), image_size=64,
                  photos_=photos)
  for item in written:
    assert "against float32's" in item.check and "on 10 demo photos" in item.check, item.check
    from ai_edge_litert.interpreter import Interpreter
    stored = [detail["dtype"] for detail in Interpreter(model_path=item.paths[0]).get_tensor_details()]
    assert stored.count(np.int8) > 20, item.name  # the convolutions' kernels (and for litert-int8 activations)
  with pytest.raises(ExportError, match=r"litert-float16 loses -?\d+\.\d points of top-1 \(\d+\.\d% against "
                                        r"float32's \d+\.\d% on 10 demo photos\), more than --max_accuracy_drop -1"):
    write(model, SPEC, str(tmp_path / "refused"), ("litert-float16",), image_size=64, photos_=photos,
          max_accuracy_drop=-1)
  assert not (tmp_path / "refused" / "classification-float16.tflite").exists()
  with pytest.raises(ExportError, match="litert-dynamic-int8: what quantizing costs is measured on labelled val"):
    write(model, SPEC, str(tmp_path / "none"), ("onnx", "litert-dynamic-int8"), image_size=64)
  with pytest.raises(ExportError, match="litert-int8 calibrates its int8 ranges on the run's training photos"):
    write(model, SPEC, str(tmp_path / "none"), ("litert-int8",), image_size=64, allow_accuracy_drop=True)
  assert not (tmp_path / "none").exists()  # refused before anything was written


TINY_CARD = presets.Card({"name": "efficientnetv2-b0", "num_classes": 4, "width": 0.25, "depth": 0.25},
                         "the test's randomized model", "CC0-1.0")


def test_a_preset_loads_in_one_line_with_its_class_names_and_card(exported, tmp_path):
  """A preset folder loads into the model it was written from (logits from [0, 1] images; from normalized ones
  without its preprocessing) with its class names, in float32 under any global precision policy; its card says
  where the weights came from, their licence and the parity measured when it was written. A folder that is not a
  preset is one error naming it."""
  model, _, _ = exported
  names = ["daisy", "dandelion", "rose", "sunflower"]
  (item,) = write(model, SPEC, str(tmp_path / "out"), ("preset",), image_size=64, labels=names, card=TINY_CARD)
  folder = tmp_path / "out" / "preset"
  assert item.paths == [str(folder)] and "reloaded: logits within" in item.check
  assert sorted(path.name for path in folder.iterdir()) == sorted(presets.FILES)
  x = unit_images(3, 97)
  expected = model((x * 255 - 128) / 128, training=False).numpy()
  keras.mixed_precision.set_global_policy("mixed_bfloat16")
  try:
    loaded = effnetv2_tf.from_preset(str(folder))
    assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"  # put back
  finally:
    keras.mixed_precision.set_global_policy("float32")
  np.testing.assert_allclose(loaded(x).numpy(), expected, atol=1e-5 * np.abs(expected).max())
  assert loaded.class_names == names and loaded.image_size == 64
  bare = effnetv2_tf.from_preset(str(folder), include_preprocessing=False)
  np.testing.assert_array_equal(bare((x * 255 - 128) / 128).numpy(), expected)
  card = (folder / "README.md").read_text()
  assert "**Origin**: the test's randomized model" in card and "**Licence**: CC0-1.0" in card
  assert "**Parity**: reloaded by effnetv2_tf.from_preset when written: logits within" in card
  metadata = json.loads((folder / "metadata.json").read_text())
  assert metadata["keras"] == keras.__version__ and metadata["written_with_backend"] == "tensorflow"
  with pytest.raises(presets.PresetError, match=re.escape(f"{tmp_path} is not a preset (no config.json): give")):
    effnetv2_tf.from_preset(str(tmp_path))


@pytest.mark.jax
def test_an_official_checkpoints_preset_loads_on_jax_without_tensorflow(tmp_path):
  """An official-layout checkpoint (official names, 11 classes) exported as a preset by the export command, read
  by Keras on the JAX backend in a process that never imports TensorFlow: the logits of the checkpoint loaded
  under TensorFlow, within 1e-4 of their scale; its card names the checkpoint and the licence."""
  from effnetv2_tf.weights.official import load_official_checkpoint
  from tests.helpers import randomize, write_official_checkpoint
  source = create_model("efficientnetv2-b0", num_classes=11, classifier_activation=None)
  randomize(source, 7)
  write_official_checkpoint(tmp_path / "efficientnetv2-b0" / "model", source, ema_model=source)
  done = call(export_command.main, "--official", tmp_path / "efficientnetv2-b0", "--model", "efficientnetv2-b0",
              "--format=preset", tmp_path / "export")
  assert done.returncode == 0, done.stderr[-3000:]
  loaded = create_model("efficientnetv2-b0", num_classes=11, classifier_activation=None)
  load_official_checkpoint(loaded, str(tmp_path / "efficientnetv2-b0"))
  x = unit_images(2, 96)
  np.save(tmp_path / "x.npy", x)
  script = ("import sys, numpy as np, effnetv2_tf; model = effnetv2_tf.from_preset(sys.argv[1]); "
            "np.save(sys.argv[3], np.asarray(model(np.load(sys.argv[2])))); "
            "print(len(model.class_names), sorted(name for name in sys.modules if name.startswith('tensorflow')))")
  ran = subprocess.run([sys.executable, "-c", script, tmp_path / "export" / "preset", tmp_path / "x.npy",
                        tmp_path / "jax.npy"], capture_output=True, text=True, cwd=ROOT, timeout=300,
                       env={**os.environ, "KERAS_BACKEND": "jax"})
  assert ran.returncode == 0, ran.stderr[-3000:]
  assert ran.stdout.strip().splitlines()[-1] == "0 []"  # 11 classes: no names; no TensorFlow imported
  card = (tmp_path / "export" / "preset" / "README.md").read_text()
  assert f"**Origin**: the official checkpoint in {tmp_path / 'efficientnetv2-b0'} (google/automl), its EMA" in card
  assert "**Licence**: Apache License 2.0" in card
  normalized = (x - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])  # B0: ImageNet mean/std
  expected = loaded(normalized.astype("float32"), training=False).numpy()
  assert np.abs(expected).max() > 0.1
  np.testing.assert_allclose(np.load(tmp_path / "jax.npy"), expected, atol=1e-4 * np.abs(expected).max())


@pytest.mark.e2e  # a full-size B0 from checkpoint to a served SavedModel, ONNX and LiteRT: 60 s
@pytest.mark.one_stack  # the formats on the TPU build: the fast tier's small model
def test_one_command_exports_an_official_checkpoint_that_runs_without_the_package(tmp_path):
  """An official-layout checkpoint (official names, 11 classes) -> SavedModels, ONNX and LiteRT files whose
  runtimes give the loaded Keras model's logits."""
  from effnetv2_tf.weights.official import load_official_checkpoint
  from tests.helpers import randomize, write_official_checkpoint
  source = create_model("efficientnetv2-b0", num_classes=11, classifier_activation=None)
  randomize(source, 7)
  write_official_checkpoint(tmp_path / "efficientnetv2-b0" / "model", source, ema_model=source)
  done = call(export_command.main, "--official", tmp_path / "efficientnetv2-b0", "--model", "efficientnetv2-b0",
              "--format=saved_model,onnx,litert", "--image_size=96", tmp_path / "export")
  assert done.returncode == 0, done.stderr[-3000:]
  assert "from EMA shadows" in done.stdout and "saved_model: " in done.stdout
  assert not (tmp_path / "export" / "classification" / "assets" / "labels.txt").exists()  # 11 classes: no names

  keras_model = create_model("efficientnetv2-b0", num_classes=11, classifier_activation=None)
  load_official_checkpoint(keras_model, str(tmp_path / "efficientnetv2-b0"))
  export = tmp_path / "export"
  out = run_without_package({"logits": (export / "classification", "serving_default", "images", (2, 96)),
                             "features": (export / "feature-vector", "serving_default", "images", (2, 96))})
  x = unit_images(2, 96)
  normalized = (x - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])  # B0: ImageNet mean/std
  expected = keras_model(normalized.astype("float32"), training=False).numpy()
  logits = out["logits"]["logits"]
  assert logits.shape == (2, 11) and np.abs(expected).max() > 0.1
  np.testing.assert_allclose(logits, expected, atol=1e-5, rtol=1e-5)
  assert out["features"]["features"].shape == (2, 1280)
  # The same logits from the ONNX file under onnxruntime and the float32 LiteRT file under its interpreter (the
  # preset's: test_an_official_checkpoints_preset_loads_on_jax_without_tensorflow).
  for logits in (_onnx_logits(export / "classification.onnx", x)[0],
                 _litert_logits(export / "classification.tflite", x)[0]):
    np.testing.assert_allclose(logits, expected, atol=1e-4 * np.abs(expected).max())


def test_an_export_carries_its_class_names_and_predict_uses_them(exported, tmp_path):
  from effnetv2_tf.labels import imagenet_labels_for, load_labels
  model, _, _ = exported
  names = ["daisy", "dandelion", "rose", "sunflower"]
  paths = export_saved_models(model, SPEC, str(tmp_path / "named"), image_size=64, labels=names)
  assert load_labels(f"{paths['classification']}/assets/labels.txt") == names
  photo = next((ROOT / "effnetv2_tf" / "demo_data" / "val" / "rose").glob("*.jpg"))
  served = tf.saved_model.load(paths["classification"]).signatures["serving_bytes"](
      image_bytes=tf.constant([photo.read_bytes()]))
  assert [names[i] for i in served["classes"][0].numpy()] == [n.decode() for n in served["class_names"][0].numpy()]
  done = call(predict.main, paths["classification"], photo)
  assert done.returncode == 0, done.stderr[-2000:]
  assert any(f"{name} (" in done.stdout for name in names)
  assert imagenet_labels_for(1000)[0].startswith("tench") and len(imagenet_labels_for(21_843)) == 21_842
  assert imagenet_labels_for(11) is None


def test_export_command_errors_are_one_line(tmp_path):
  (tmp_path / "empty").mkdir()
  done = call(export_command.main, "--official", tmp_path / "empty", "--model", "efficientnetv2-b0", tmp_path / "export")
  assert done.returncode == 2
  assert done.stderr.strip().splitlines()[-1].startswith("error: ") and "is not a TF checkpoint" in done.stderr
