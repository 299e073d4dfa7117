"""Converts an image folder (SPLIT/CLASS/*.jpg|jpeg|png) into sharded TFRecords, once.

  python -m effnetv2_tf.data.convert SRC_DIR OUT_DIR [--shards 8]

Writes OUT_DIR/SPLIT-00000-of-0000N.tfrecord in the ImageNet layout (image/encoded JPEG bytes,
image/class/label 1-based, so the default TFRecordSource reads it), and OUT_DIR/labels.txt with one class
name per line (line i is label i, 0-based). Files are assigned to shards in a fixed shuffled order, so
the same folder always gives the same shards. Images that do not decode are skipped and listed;
non-JPEG images are re-encoded as JPEG (quality 95).
"""

import argparse
import pathlib
import random
import sys

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
LABELS_FILE = "labels.txt"


def find_splits(src):
  """{split: [(path, class_name), ...]} for SRC/SPLIT/CLASS/image; a bare SRC/CLASS/image is split 'train'."""
  src = pathlib.Path(src)
  if not src.is_dir():
    raise FileNotFoundError(f"Image folder {src} does not exist.")

  def images_by_class(folder):
    return [(path, class_dir.name) for class_dir in sorted(p for p in folder.iterdir() if p.is_dir())
            for path in sorted(class_dir.iterdir()) if path.suffix.lower() in IMAGE_SUFFIXES]

  top_level_images = images_by_class(src)
  if top_level_images:
    return {"train": top_level_images}
  splits = {split.name: images_by_class(split) for split in sorted(p for p in src.iterdir() if p.is_dir())}
  splits = {name: images for name, images in splits.items() if images}
  if not splits:
    raise FileNotFoundError(f"No images found in {src}: expected SPLIT/CLASS/*.jpg (or CLASS/*.jpg).")
  return splits


def _jpeg_bytes(path, tf):
  """The file's bytes if it is a decodable JPEG, a re-encoded JPEG for other formats; None if unreadable."""
  data = path.read_bytes()
  try:
    image = tf.io.decode_image(data, channels=3, expand_animations=False)
  except tf.errors.InvalidArgumentError:
    return None
  return data if tf.io.is_jpeg(data) else tf.io.encode_jpeg(image, quality=95).numpy()


def _example(image_bytes, label, tf):
  return tf.train.Example(features=tf.train.Features(feature={
      "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image_bytes])),
      "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label + 1])),
  })).SerializeToString()


def _progress(split, done, total):
  width = 30
  filled = width * done // max(total, 1)
  sys.stderr.write(f"\r{split:>10} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
  if done == total:
    sys.stderr.write("\n")
  sys.stderr.flush()


def convert(src, out, shards=8, seed=0):
  """Converts the folder; returns {"classes": [...], "written": {split: n}, "skipped": [paths]}."""
  import tensorflow as tf
  splits = find_splits(src)
  classes = sorted({name for images in splits.values() for _, name in images})
  label_of = {name: index for index, name in enumerate(classes)}
  out = pathlib.Path(out)
  out.mkdir(parents=True, exist_ok=True)
  (out / LABELS_FILE).write_text("".join(f"{name}\n" for name in classes))
  summary = {"classes": classes, "written": {}, "skipped": []}
  for split, images in splits.items():
    images = list(images)
    random.Random(seed).shuffle(images)  # mixes classes across shards, the same way every time
    num_shards = max(1, min(shards, len(images)))
    writers = [tf.io.TFRecordWriter(str(out / f"{split}-{i:05d}-of-{num_shards:05d}.tfrecord"))
               for i in range(num_shards)]
    written = 0
    for index, (path, class_name) in enumerate(images):
      image_bytes = _jpeg_bytes(path, tf)
      if image_bytes is None:
        summary["skipped"].append(str(path))
      else:
        writers[written % num_shards].write(_example(image_bytes, label_of[class_name], tf))
        written += 1
      if index % 50 == 0 or index + 1 == len(images):
        _progress(split, index + 1, len(images))
    for writer in writers:
      writer.close()
    summary["written"][split] = written
  return summary


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("src", help="image folder: SRC/SPLIT/CLASS/*.jpg")
  parser.add_argument("out", help="output folder for the TFRecords and labels.txt")
  parser.add_argument("--shards", type=int, default=8, help="shards per split (default 8)")
  args = parser.parse_args(argv)
  try:
    summary = convert(args.src, args.out, args.shards)
  except FileNotFoundError as error:
    parser.exit(2, f"error: {error}\n")
  print(f"{len(summary['classes'])} classes -> {pathlib.Path(args.out) / LABELS_FILE}")
  for split, count in summary["written"].items():
    print(f"  {split}: {count} images")
  print(f"  skipped (not decodable): {len(summary['skipped'])}")
  for path in summary["skipped"][:20]:
    print(f"    {path}")


if __name__ == "__main__":
  main()
