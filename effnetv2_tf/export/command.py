"""python -m effnetv2_tf.export: an official automl checkpoint in the formats people serve, without a run."""

import argparse

from effnetv2_tf.export.formats import formats_help, parse_formats
from effnetv2_tf.export.writer import export_official


def main(argv=None):
  parser = argparse.ArgumentParser(prog="python -m effnetv2_tf.export",
                                   description="Export an official automl checkpoint for serving.")
  parser.add_argument("export_dir", help="the folder the formats are written into")
  parser.add_argument("--official", required=True,
                      help="imagenet, imagenet21k or imagenet21k-ft1k (downloaded once), or an unpacked official "
                           "tarball (folder or checkpoint prefix)")
  parser.add_argument("--model", required=True, help="its model, e.g. efficientnetv2-s (also for -21k, -21k-ft1k)")
  parser.add_argument("--format", default="saved_model", help=f"comma-separated, of: {formats_help()}")
  parser.add_argument("--raw", action="store_true", help="the raw weights instead of the EMA shadows")
  parser.add_argument("--image_size", type=int,
                      help="the LiteRT input size and serving_bytes crop (default: the model's eval size)")
  parser.add_argument("--allow_accuracy_drop", action="store_true",
                      help="write litert-float16 or litert-dynamic-int8 without measuring their top-1 (no labelled "
                           "ImageNet photos here)")
  parser.add_argument("--overwrite", action="store_true", help="replace a previous export in export_dir")
  args = parser.parse_args(argv)
  from effnetv2_tf.export.runtimes import MissingRuntimeError
  from effnetv2_tf.os_errors import os_error_line
  from effnetv2_tf.weights.pretrained import DownloadError
  try:
    export_official(args.official, args.model, args.export_dir, use_ema=not args.raw, image_size=args.image_size,
                    formats=parse_formats(args.format), overwrite=args.overwrite,
                    allow_accuracy_drop=args.allow_accuracy_drop, say=lambda line: print(line, flush=True))
  except (ValueError, DownloadError, MissingRuntimeError) as error:  # a bad name, a dir in use, no network
    parser.exit(2, f"error: {error}\n")
  except Exception as error:  # noqa: BLE001 -- the machine's refusals: OSError or TensorFlow's errors
    line = os_error_line(error, args.export_dir)
    if line is None:
      raise
    parser.exit(2, f"error: {line}\n")
