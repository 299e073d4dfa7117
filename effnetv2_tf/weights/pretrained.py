"""The official checkpoints by name: downloaded once into the Keras cache, unpacked and checked there.

  create_model("efficientnetv2-b0", weights="imagenet")      # or "imagenet21k", "imagenet21k-ft1k"
  python main.py ... --hparam_str="train.ft_init_ckpt=imagenet"
  python -m effnetv2_tf.export --official imagenet --model efficientnetv2-b0 export/b0

The tarballs are the ones the official README lists (google/automl, efficientnetv2/README.md), under BASE_URL;
the environment variable EFFNETV2_WEIGHTS_URL replaces it (a mirror, or a server of the tests on 127.0.0.1).
keras.utils.get_file downloads (a download cut short leaves nothing behind); the unpacked folder appears in the
cache only once complete (unpacked beside it, then renamed), and the tarball is removed then.
"""

import os
import shutil
import tarfile
import zlib

BASE_URL = "https://storage.googleapis.com/cloud-tpu-checkpoints/efficientnet/v2/"
URL_VARIABLE = "EFFNETV2_WEIGHTS_URL"
CACHE_SUBDIR = "effnetv2_tf"

# The pretraining a name stands for -> the tarball's suffix and the checkpoint's class count.
PRETRAINED = {"imagenet": ("", 1000), "imagenet21k": ("-21k", 21843), "imagenet21k-ft1k": ("-21k-ft1k", 1000)}
# What the official README lists: every V2 model with each pretraining, but V2-XL only from ImageNet-21k.
MODELS = ("efficientnetv2-b0", "efficientnetv2-b1", "efficientnetv2-b2", "efficientnetv2-b3", "efficientnetv2-s",
          "efficientnetv2-m", "efficientnetv2-l", "efficientnetv2-xl")
MISSING = {("efficientnetv2-xl", "imagenet")}


class DownloadError(OSError):
  """An official checkpoint could not be fetched or unpacked; the message names the URL and what to do."""


def is_pretrained_name(weights):
  return isinstance(weights, str) and weights in PRETRAINED


def num_classes_of(weights):
  return PRETRAINED[weights][1]


def checkpoint_folder(model_name, weights):
  """The official checkpoint `weights` names for `model_name` (a pretraining's name: downloaded once), or
  `weights` itself as a path (an unpacked tarball's folder or a checkpoint prefix)."""
  return official_checkpoint(model_name, weights) if is_pretrained_name(weights) else str(weights)


def tarball_name(model_name, weights):
  """`efficientnetv2-s-21k.tgz` for ("efficientnetv2-s", "imagenet21k"); a ValueError names what exists."""
  if model_name not in MODELS:
    raise ValueError(f"weights={weights!r}: official checkpoints exist for {', '.join(MODELS)}, not {model_name} "
                     "(V1: effnetv2_tf.weights.keras_applications loads keras.applications' files).")
  if (model_name, weights) in MISSING:
    raise ValueError(f"{model_name} has no official {weights} checkpoint: use imagenet21k or imagenet21k-ft1k.")
  return f"{model_name}{PRETRAINED[weights][0]}.tgz"


def url_of(name):
  return os.environ.get(URL_VARIABLE, BASE_URL).rstrip("/") + "/" + name


def cache_dir():
  """Where Keras keeps what it downloads ($KERAS_HOME, else ~/.keras), with our sub-folder."""
  return os.path.join(os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras"), CACHE_SUBDIR)


def official_checkpoint(model_name, weights):
  """The folder of the unpacked official checkpoint `weights` of `model_name`, downloaded on first use."""
  import keras

  name = tarball_name(model_name, weights)
  url, folder = url_of(name), os.path.join(cache_dir(), name[:-len(".tgz")])
  if os.path.isdir(folder):
    return _checkpoint_folder(folder, url)
  by_hand = (f"fetch it by hand (curl -O {url} && tar xzf {name}) and pass the folder instead of {weights!r}, or "
             f"set {URL_VARIABLE} to a mirror")
  for attempt in (1, 2):  # a damaged tarball found in the cache is downloaded once more
    cached = os.path.exists(os.path.join(cache_dir(), name))
    try:
      archive = keras.utils.get_file(fname=name, origin=url, cache_subdir=os.path.abspath(cache_dir()))
    except Exception as error:  # noqa: BLE001 -- get_file wraps every URL error in a plain Exception
      raise DownloadError(f"could not download {url}: {_reason(error)}; {by_hand}.") from None
    try:
      _unpack(archive, folder)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
      size = os.path.getsize(archive)
      os.remove(archive)  # ours: a download, never a user's file
      if cached and attempt == 1:
        print(f"{archive} in the cache is damaged ({error}): downloading it again", flush=True)
        continue
      raise DownloadError(f"{url} gave a damaged tarball ({size:,} bytes: {error}); removed from the cache: rerun, "
                          f"or {by_hand}.") from None
    os.remove(archive)  # the unpacked folder is what the cache keeps
    return _checkpoint_folder(folder, url)


def _unpack(archive, folder):
  """Unpacks `archive` beside `folder`, then renames it: the folder exists only complete."""
  partial = folder + ".partial"
  shutil.rmtree(partial, ignore_errors=True)  # an unpacking cut short before (ours)
  try:
    with tarfile.open(archive, "r:gz") as tar:
      tar.extractall(partial, filter="data")
  except BaseException:
    shutil.rmtree(partial, ignore_errors=True)
    raise
  os.replace(partial, folder)


def _checkpoint_folder(folder, url):
  """The folder under `folder` that holds the checkpoint (the tarball's top folder)."""
  found = sorted({root for root, _, files in os.walk(folder) for name in files if name.endswith(".index")})
  if len(found) != 1:
    raise DownloadError(f"{url} unpacked into {folder} holds {len(found)} checkpoint folders, not one: "
                        f"remove {folder} and rerun, or pass a checkpoint folder of your own.")
  return found[0]


def _reason(error):
  """What went wrong, from get_file's 'URL fetch failure on URL: CODE -- REASON' or urllib's own error."""
  text = str(error)
  return text.split(" -- ", 1)[1] if " -- " in text else text or type(error).__name__
