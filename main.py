"""python main.py [FLAGS]: the command line from the repository (effnetv2_tf/cli.py; installed: effnetv2-tf).

  python main.py                 # the demo: a small EfficientNetV2 on the shipped flower photos
  python main.py --helpfull      # every flag
"""

from effnetv2_tf.cli import run

if __name__ == "__main__":
  run()
