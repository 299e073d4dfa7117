"""effnetv2_tf command line.

Until the training loop lands, `python main.py` builds the chosen model and prints its summary.
"""

from absl import app, flags

flags.DEFINE_string("model_name", "efficientnetv2-s", "Model to build: a name from effnetv2_tf.model.MODEL_SPECS.")
flags.DEFINE_integer("num_classes", 1000, "Classifier width.")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from effnetv2_tf.model import create_model  # after flag parsing: importing TF is slow
  try:
    model = create_model(FLAGS.model_name, num_classes=FLAGS.num_classes)
  except ValueError as error:
    raise app.UsageError(str(error)) from None
  model.summary(line_length=110)


if __name__ == "__main__":
  app.run(main)
