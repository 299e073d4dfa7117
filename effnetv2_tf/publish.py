"""python -m effnetv2_tf.publish: a preset folder (--format=preset) uploaded to Hugging Face or Kaggle Models by
their own libraries, its model card (README.md) with it.

  python -m effnetv2_tf.publish export/b0/preset hf://YOU/efficientnetv2-b0-flowers
  python -m effnetv2_tf.publish export/b0/preset kaggle://YOU/efficientnetv2-b0-flowers/keras/default \\
      --licence "Apache 2.0"

Everything that can be checked here is, before anything is sent, each a line and exit 2: the folder is a whole
preset, the destination is one of the two forms, the hub's library is installed (pip install huggingface_hub, or
kagglehub) and holds credentials (`hf auth login` or HF_TOKEN; kagglehub.login() or KAGGLE_USERNAME and
KAGGLE_KEY). A published folder loads elsewhere after huggingface_hub.snapshot_download or
kagglehub.model_download: effnetv2_tf.from_preset(that folder).
"""

import argparse
import importlib
import os

from effnetv2_tf import presets

HUBS = {  # scheme: (the library, how many parts the destination has, what they are)
    "hf": ("huggingface_hub", 2, "hf://OWNER/REPO"),
    "kaggle": ("kagglehub", 4, "kaggle://OWNER/MODEL/FRAMEWORK/VARIATION (e.g. .../keras/default)"),
}


class PublishError(ValueError):
  """The folder, the destination or this machine's hub set-up cannot publish; the message says what to do."""


def check_preset(folder):
  """Refuses a folder that is not a whole preset: its files and its card, as --format=preset writes them."""
  if not presets.is_preset(folder):
    raise PublishError(f"{folder} is not a preset (no {presets.CONFIG_FILE} and {presets.WEIGHTS_FILE}): export one "
                       "with --format=preset and give EXPORT_DIR/preset.")
  missing = [name for name in presets.FILES if not os.path.isfile(os.path.join(folder, name))]
  if missing:
    raise PublishError(f"{folder} lacks {', '.join(missing)} (its card and metadata are written last, once the "
                       "preset reloads): export it again with --format=preset.")


def parse_destination(destination):
  """"hf://OWNER/REPO" -> ("hf", "OWNER/REPO"); "kaggle://O/M/F/V" -> ("kaggle", "O/M/F/V")."""
  scheme, _, handle = str(destination).partition("://")
  if scheme in HUBS and len([part for part in handle.split("/") if part]) == HUBS[scheme][1]:
    return scheme, handle.strip("/")
  raise PublishError(f"{destination}: publish to {' or '.join(form for _, _, form in HUBS.values())}.")


def hub_library(scheme):
  """The hub's library, or a PublishError naming how to install it."""
  module = HUBS[scheme][0]
  try:
    return importlib.import_module(module)
  except ImportError:
    raise PublishError(f"publishing to {scheme}:// needs {module}, which is not installed: pip install "
                       f"{module}.") from None


def _credentials_line(scheme, library):
  """None when the hub's library holds credentials, else the line that says how to give them."""
  if scheme == "hf":
    return None if library.get_token() else ("no Hugging Face token on this machine: run `hf auth login` (or set "
                                             "HF_TOKEN), then publish again.")
  from kagglehub.config import get_kaggle_credentials
  return None if get_kaggle_credentials() else ("no Kaggle credentials on this machine: run kagglehub.login() (or "
                                                "set KAGGLE_USERNAME and KAGGLE_KEY), then publish again.")


def publish(folder, destination, licence=None, say=print):
  """Uploads the preset `folder` to `destination` (hf:// or kaggle://) once every check passed; returns where."""
  check_preset(folder)
  scheme, handle = parse_destination(destination)
  library = hub_library(scheme)
  line = _credentials_line(scheme, library)
  if line:
    raise PublishError(line)
  if scheme == "hf":
    library.create_repo(handle, exist_ok=True)
    library.upload_folder(repo_id=handle, folder_path=folder, commit_message="effnetv2_tf preset")
  else:
    library.model_upload(handle, folder, license_name=licence)
  say(f"published {folder} to {destination}")
  return destination


def main(argv=None):
  parser = argparse.ArgumentParser(prog="python -m effnetv2_tf.publish", description=__doc__.split("\n\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("preset", help="the preset folder (EXPORT_DIR/preset of --format=preset)")
  parser.add_argument("destination", help=" or ".join(form for _, _, form in HUBS.values()))
  parser.add_argument("--licence", help="kaggle: the licence to declare (the card's: Apache 2.0 for the official "
                                        "weights; for a run, its data's and starting weights')")
  args = parser.parse_args(argv)
  try:
    publish(args.preset, args.destination, args.licence)
  except PublishError as error:
    parser.exit(2, f"error: {error}\n")


if __name__ == "__main__":
  main()
