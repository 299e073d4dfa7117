"""Top-k predictions for image files or folders with an exported classification model.

  python -m effnetv2_tf.predict EXPORT_DIR/classification photo.jpg photos/ --labels imagenet1k --top_k 5

By default the class names are the export's own (its assets/labels.txt), else class numbers; --labels is
imagenet1k or imagenet21k (shipped, see effnetv2_tf/labels/README.md) or a file with one class name per
line (the converter's labels.txt; `synset<TAB>names` lines work too). A file that does not decode
is reported with the reason (not an image, damaged) and the rest are still predicted.
"""

import argparse
import errno
import os
import pathlib
import stat
import sys

from effnetv2_tf.labels import load_labels
from effnetv2_tf.quiet_start import import_tensorflow

tf = import_tensorflow()  # without TensorFlow's start-up banner

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".bmp"}
BATCH = 16


def _why_not_a_file(path):
  """Why a path named like an image cannot be read as one (a folder, a symlink loop, a broken link), or None."""
  try:
    return "a folder, not an image" if stat.S_ISDIR(os.stat(path).st_mode) else None
  except OSError as error:
    if error.errno == errno.ELOOP:
      return "a symlink loop"
    return f"a broken link (to {os.readlink(path)})" if path.is_symlink() else None


def image_files(paths):
  """(files, skipped): the image files named and those inside named folders (recursively, sorted), and
  (path, reason) for what cannot be read as an image: a named path or a folder's entry named like an image that
  is not a file, a folder without images, a path that does not exist."""
  files, skipped = [], []
  for path in map(pathlib.Path, paths):
    if path.is_dir():
      entries = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
      if not entries:
        skipped.append((path, f"a folder without images ({', '.join(sorted(IMAGE_SUFFIXES))})"))
      for entry in entries:
        reason = _why_not_a_file(entry)
        if reason:
          skipped.append((entry, reason))
        else:
          files.append(entry)
    else:
      reason = _why_not_a_file(path) or (None if path.exists() else "no such file or folder")
      if reason:
        skipped.append((path, reason))
      else:
        files.append(path)
  return files, skipped


def predict(classification_dir, files, top_k=5):
  """Yields (file, [(class index, score), ...]) or (file, error message) per file."""
  serve = tf.saved_model.load(str(classification_dir)).signatures["serving_bytes"]

  def run(batch):
    result = serve(image_bytes=tf.constant([f.read_bytes() for f in batch]))
    return [list(zip(c.tolist()[:top_k], s.tolist()[:top_k]))
            for c, s in zip(result["classes"].numpy(), result["scores"].numpy())]

  for start in range(0, len(files), BATCH):
    batch = files[start:start + BATCH]
    try:
      yield from zip(batch, run(batch))
    except tf.errors.InvalidArgumentError:  # one bad file spoils the batch: find it, keep the others
      for file in batch:
        try:
          yield file, run([file])[0]
        except tf.errors.InvalidArgumentError:
          yield file, why_unreadable(file.read_bytes())


# How each format the serving signature decodes starts.
_SIGNATURES = {b"\xff\xd8\xff": "JPEG", b"\x89PNG": "PNG", b"GIF8": "GIF", b"BM": "BMP"}


def why_unreadable(data):
  """Why bytes that the serving signature refused are not a usable image, in a few words."""
  if not data:
    return "empty file"
  kind = next((name for magic, name in _SIGNATURES.items() if data.startswith(magic)), None)
  if kind is None:
    return "not an image (neither JPEG, PNG, GIF nor BMP)"
  return f"a damaged or truncated {kind} ({len(data):,} bytes)"


def _exported_labels(classification_dir):
  path = pathlib.Path(classification_dir) / "assets" / "labels.txt"
  return str(path) if path.is_file() else None


def _name(labels, index):
  return labels[index] if labels and index < len(labels) else f"class {index}"


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("model", help="an exported classification SavedModel (EXPORT_DIR/classification)")
  parser.add_argument("images", nargs="+", help="image files or folders")
  parser.add_argument("--labels", help="imagenet1k, imagenet21k or a label file (default: the export's own "
                      "assets/labels.txt, else class numbers)")
  parser.add_argument("--top_k", type=int, default=5)
  args = parser.parse_args(argv)
  try:
    if not tf.saved_model.contains_saved_model(args.model):
      raise FileNotFoundError(f"{args.model} is not a SavedModel: give an export's classification folder "
                              "(python main.py --mode=export writes one).")
    names = args.labels or _exported_labels(args.model)
    labels = load_labels(names) if names else None
    files, skipped = image_files(args.images)
    if not files:
      raise FileNotFoundError("no image to predict: " + "; ".join(f"{path}: {reason}" for path, reason in skipped))
  except FileNotFoundError as error:
    parser.exit(2, f"error: {error}\n")
  for path, reason in skipped:
    print(f"{path}: {reason}", file=sys.stderr)
  failed = len(skipped)
  for file, result in predict(args.model, files, args.top_k):
    if isinstance(result, str):
      failed += 1
      print(f"{file}: {result}", file=sys.stderr)
    else:
      print(f"{file}: " + ", ".join(f"{_name(labels, c)} ({s:.3f})" for c, s in result))
  print(f"{len(files) + len(skipped) - failed} predicted, {failed} could not be read", file=sys.stderr)
  if failed == len(files) + len(skipped):
    sys.exit(1)  # nothing predicted: a script must not take this for success


if __name__ == "__main__":
  main()
