"""Converts an image folder (SPLIT/CLASS/*.jpg|jpeg|png) into sharded TFRecords, once.

  python -m effnetv2_tf.data.convert SRC_DIR OUT_DIR [--shards 8]

Writes OUT_DIR/SPLIT-00000-of-0000N.tfrecord in the ImageNet layout (image/encoded JPEG bytes,
image/class/label 1-based, so the default TFRecordSource reads it), and OUT_DIR/labels.txt with one class
name per line (line i is label i, 0-based), and, last, OUT_DIR/dataset.json with the class count and each
split's files, examples and median image size (a run reads its settings from it). Files are assigned to shards in a fixed
shuffled order, so the same folder always gives the same shards. Images that do not decode are skipped and listed;
non-JPEG images are re-encoded as JPEG (quality 95).
"""

import argparse
import pathlib
import random
import statistics
import sys

from effnetv2_tf.data.facts import DATASET_FILE, write_dataset_file
from effnetv2_tf.os_errors import os_error_line

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
LABELS_FILE = "labels.txt"
PARTIAL = ".partial"  # a shard's suffix until every shard is written


class LayoutError(ValueError):
  """The image folder or the output folder is not what the converter can use unambiguously."""


def _images_in(folder):
  return sorted(path for path in folder.iterdir() if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES)


def _subfolders(folder):
  return sorted(path for path in folder.iterdir() if path.is_dir())


def find_splits(src):
  """({split: [(path, class_name), ...]}, [empty class folders]) for SRC/SPLIT/CLASS/image, or for
  SRC/CLASS/image (split 'train'). Images beside the class folders make the layout ambiguous: refused."""
  src = pathlib.Path(src)
  if not src.is_dir():
    raise FileNotFoundError(f"Image folder {src} does not exist.")
  # SPLIT/CLASS when some folder below SRC holds class folders of images, else CLASS.
  nested = any(_images_in(class_dir) for split in _subfolders(src) for class_dir in _subfolders(split))
  layout = {split.name: split for split in _subfolders(src)} if nested else {"train": src}
  strays = _images_in(src) + [image for folder in layout.values() if nested for image in _images_in(folder)]
  if strays:
    shown = ", ".join(str(path.relative_to(src)) for path in strays[:5]) + (" ..." if len(strays) > 5 else "")
    raise LayoutError(f"{src}: {len(strays)} image(s) outside a class folder ({shown}): expected "
                      f"{'SPLIT/CLASS/image' if nested else 'CLASS/image'}; move or remove them.")
  splits, empty = {}, []
  for split, folder in layout.items():
    images = []
    for class_dir in _subfolders(folder):
      found = _images_in(class_dir)
      if not found:
        empty.append(str(class_dir.relative_to(src)))
      images += [(path, class_dir.name) for path in found]
    if images:
      splits[split] = images
  if not splits:
    raise FileNotFoundError(f"No images found in {src}: expected SPLIT/CLASS/*.jpg (or CLASS/*.jpg).")
  return splits, empty


def _unfinished_output(out):
  """The shards of a conversion cut short (written under a .partial name until the conversion ends): ours."""
  return sorted(path for path in out.glob(f"*-*-of-*.tfrecord{PARTIAL}") if path.is_file())


def _earlier_output(out):
  """The files of an earlier conversion in `out`: its shards, labels.txt and dataset.json."""
  return sorted(path for path in out.glob("*-*-of-*.tfrecord") if path.is_file()) + [
      out / name for name in (LABELS_FILE, DATASET_FILE) if (out / name).is_file()]


def class_names(splits):
  """The classes of find_splits' splits in label order (a label is its class's index): every split's class
  names, sorted."""
  return sorted({name for images in splits.values() for _, name in images})


def _jpeg_bytes(path, tf):
  """(the file's bytes if it is a decodable JPEG, a re-encoded JPEG for other formats, its shorter side in
  pixels); None if unreadable."""
  data = path.read_bytes()
  try:
    image = tf.io.decode_image(data, channels=3, expand_animations=False)
  except tf.errors.InvalidArgumentError:
    return None
  return (data if tf.io.is_jpeg(data) else tf.io.encode_jpeg(image, quality=95).numpy()), min(image.shape[:2])


def _example(image_bytes, label, tf):
  return tf.train.Example(features=tf.train.Features(feature={
      "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image_bytes])),
      "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label + 1])),
  })).SerializeToString()


def _progress(split, done, total, interactive):
  """A bar redrawn in place on a terminal; in a log file, a plain line at each tenth."""
  if interactive:
    if done % 50 == 1 or done == total:
      width = 30
      filled = width * done // max(total, 1)
      sys.stderr.write(f"\r{split:>10} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
      sys.stderr.write("\n" if done == total else "")
  elif done * 10 // total != (done - 1) * 10 // total:
    sys.stderr.write(f"{split:>10} {done}/{total}\n")
  sys.stderr.flush()


def convert(src, out, shards=8, seed=0, overwrite=False, progress=True):
  """Converts the folder; returns {"classes": [...], "written": {split: n}, "skipped": [paths not decodable],
  "empty": [paths of 0-byte files], "empty_classes": [folders], "replaced": n, "unfinished": n, "image_size":
  {split: median shorter side in pixels}}. Shards are written as NAME.partial and renamed once all are written;
  labels.txt and dataset.json come last; the .partial shards of a conversion cut short are replaced. An output folder holding an earlier conversion is refused (its shards would mix with
  the new ones) unless `overwrite`, which deletes those files first. `progress`: a bar (or a line at each tenth)
  on stderr."""
  splits, empty = find_splits(src)
  classes = class_names(splits)
  if len(classes) < 2:
    raise LayoutError(f"{src}: one class ({classes[0]}), and a classifier needs at least 2: add a folder of photos "
                      "per class (SPLIT/CLASS/*.jpg).")
  label_of = {name: index for index, name in enumerate(classes)}
  out = pathlib.Path(out)
  if out.exists() and not out.is_dir():
    raise LayoutError(f"Output {out} is a file: give a folder.")
  earlier = _earlier_output(out) if out.is_dir() else []
  if earlier and not overwrite:
    raise LayoutError(f"{out} holds an earlier conversion ({len(earlier)} files, e.g. {earlier[0].name}): use an "
                      "empty folder, or pass --overwrite to replace it.")
  from effnetv2_tf.quiet_start import import_tensorflow
  tf = import_tensorflow()  # after the checks: a refusal is quick and quiet
  unfinished = _unfinished_output(out) if out.is_dir() else []
  for path in earlier + unfinished:
    path.unlink()
  out.mkdir(parents=True, exist_ok=True)
  summary = {"classes": classes, "written": {}, "skipped": [], "empty": [], "empty_classes": empty,
             "replaced": len(earlier), "unfinished": len(unfinished), "image_size": {}}
  shards_written = []
  interactive = sys.stderr.isatty()
  for split, images in splits.items():
    images = list(images)
    random.Random(seed).shuffle(images)  # mixes classes across shards, the same way every time
    num_shards = max(1, min(shards, len(images)))
    names = [out / f"{split}-{i:05d}-of-{num_shards:05d}.tfrecord" for i in range(num_shards)]
    writers = [tf.io.TFRecordWriter(f"{name}{PARTIAL}") for name in names]
    shards_written += names
    written, short_sides = 0, []
    for index, (path, class_name) in enumerate(images):
      if path.stat().st_size == 0:  # said so, not decoded (TensorFlow would log its own line about it)
        summary["empty"].append(str(path))
      elif (decoded := _jpeg_bytes(path, tf)) is None:
        summary["skipped"].append(str(path))
      else:
        writers[written % num_shards].write(_example(decoded[0], label_of[class_name], tf))
        short_sides.append(decoded[1])
        written += 1
      if progress:
        _progress(split, index + 1, len(images), interactive)
    for writer in writers:
      writer.close()
    summary["written"][split] = written
    if short_sides:
      summary["image_size"][split] = int(statistics.median(short_sides))
  for name in shards_written:  # the conversion is whole: the shards take their names, then the two files
    pathlib.Path(f"{name}{PARTIAL}").rename(name)
  (out / LABELS_FILE).write_text("".join(f"{name}\n" for name in classes))
  write_dataset_file(out, len(classes), summary["written"], summary["image_size"])
  return summary


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("src", help="image folder: SRC/SPLIT/CLASS/*.jpg")
  parser.add_argument("out", help="output folder for the TFRecords and labels.txt")
  parser.add_argument("--shards", type=int, default=8, help="shards per split (default 8)")
  parser.add_argument("--overwrite", action="store_true", help="replace an earlier conversion in OUT")
  args = parser.parse_args(argv)
  try:
    summary = convert(args.src, args.out, args.shards, overwrite=args.overwrite)
  except (FileNotFoundError, LayoutError) as error:
    parser.exit(2, f"error: {error}\n")
  except OSError as error:
    line = os_error_line(error, args.out)
    if line is None:
      raise
    parser.exit(2, f"error: {line}\n")
  except KeyboardInterrupt:
    parser.exit(130, f"\ninterrupted: the shards written so far are named *{PARTIAL}; rerun the same command to "
                     "convert again (they are replaced).\n")
  if summary["unfinished"]:
    print(f"replaced a conversion cut short ({summary['unfinished']} {PARTIAL} shards)")
  if summary["replaced"]:
    print(f"replaced an earlier conversion ({summary['replaced']} files)")
  print(f"{len(summary['classes'])} classes -> {pathlib.Path(args.out) / LABELS_FILE}")
  for folder in summary["empty_classes"]:
    print(f"  warning: {folder} holds no image and was left out")
  for split, count in summary["written"].items():
    print(f"  {split}: {count} images")
  print(f"class and image counts -> {pathlib.Path(args.out) / DATASET_FILE} (training reads them from there)")
  for reason, paths in (("empty files", summary["empty"]), ("not decodable", summary["skipped"])):
    if paths or reason == "not decodable":
      print(f"  skipped ({reason}): {len(paths)}")
      for path in paths[:20]:
        print(f"    {path}")


if __name__ == "__main__":
  main()
