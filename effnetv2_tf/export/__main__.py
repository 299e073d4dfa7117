"""python -m effnetv2_tf.export --official NAME --model MODEL [--format=...] EXPORT_DIR (export.command)."""

import sys

from effnetv2_tf.export.command import main

sys.exit(main())
