"""Shared test set-up: quiet TensorFlow, a fixed seed per test, and the real-photo fixture."""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The JAX processes the tests start (they inherit this environment) share one compilation cache holding every
# program, however quick to compile: each process building a tiny model and making its first Orbax save runs ~480
# small XLA programs (initializers, copies), the same in every process, 30 s of compiling on 2 cores. A size
# limit makes JAX lock the folder (filelock) while two processes read and write it.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(pathlib.Path(__file__).resolve().parents[1] / ".pytest_cache"
                                                       / "jax-compilation-cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")
os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(2 << 30))

import keras  # noqa: E402
import pytest  # noqa: E402

# Real photos (SPLIT/CLASS/*) live beside the project; EFFNETV2_SHARED_DATA points elsewhere.
SHARED_DATA = pathlib.Path(os.environ.get("EFFNETV2_SHARED_DATA",
                                          pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(autouse=True)
def _seeded():
  keras.utils.set_random_seed(1234)


@pytest.fixture(scope="session")
def shared_data():
  """The folder of real photos (imagenette/, flowers/); skips the test when it is absent."""
  if not (SHARED_DATA / "flowers" / "train").is_dir():
    pytest.skip(f"real photos not found at {SHARED_DATA} (set EFFNETV2_SHARED_DATA to the shared/data folder)")
  return SHARED_DATA


@pytest.fixture(scope="session")
def flower_photos(shared_data):
  """Four real flower photos as uint8 RGB arrays, resized to 64x64 (small, so tests stay fast)."""
  import numpy as np
  from PIL import Image
  files = sorted((shared_data / "flowers" / "val").glob("*/*.jpg"))[::200][:4]
  return [np.asarray(Image.open(f).convert("RGB").resize((64, 64), Image.BILINEAR)) for f in files]


@pytest.fixture(scope="session")
def flower_folder(shared_data, tmp_path_factory):
  """A small SPLIT/CLASS folder of real flower photos: 6 train and 2 val images per class."""
  import shutil
  root = tmp_path_factory.mktemp("flower_folder")
  for split, per_class in (("train", 6), ("val", 2)):
    for class_dir in sorted((shared_data / "flowers" / split).iterdir()):
      (root / split / class_dir.name).mkdir(parents=True)
      for path in sorted(class_dir.glob("*.jpg"))[:per_class]:
        shutil.copy(path, root / split / class_dir.name / path.name)
  return root


@pytest.fixture(scope="session")
def flower_records(flower_folder, tmp_path_factory):
  """flower_folder converted to TFRecords (4 shards a split) with the package's converter."""
  from effnetv2_tf.data.convert import convert
  out = tmp_path_factory.mktemp("flower_records")
  convert(flower_folder, out, shards=4)
  return out


@pytest.fixture(scope="session")
def demo_records(tmp_path_factory):
  """The photos shipped for the demo (always present), converted to TFRecords once per session."""
  from effnetv2_tf.data.convert import convert
  out = tmp_path_factory.mktemp("demo_records")
  convert(pathlib.Path(__file__).resolve().parents[1] / "effnetv2_tf" / "demo_data", out, shards=4)
  return out


@pytest.fixture(scope="session")
def finished_run(demo_records, tmp_path_factory):
  """The folder of a tiny run (helpers.TINY_RUN) that main.py trained to its end on the demo records. Shared:
  a test that changes it works on a copy (helpers.copy_run)."""
  from tests.helpers import TINY_RUN, run_main
  run = tmp_path_factory.mktemp("finished_run") / "run"
  done = run_main("--mode=train", f"--model_dir={run}", f"--data_dir={demo_records}", f"--hparam_str={TINY_RUN}")
  assert done.returncode == 0, done.stderr[-3000:]
  return run
