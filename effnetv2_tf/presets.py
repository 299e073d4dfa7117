"""Keras presets: a model in one folder that a Keras 3 user loads in one line, on the TensorFlow or JAX backend
(tested; the layers are plain Keras 3, so PyTorch's backend should run them too), without TensorFlow's SavedModels.

  model = effnetv2_tf.from_preset("export/b0/preset")   # float images in [0, 1] in, logits out
  model.class_names                                     # the labels, by logit index

A preset folder holds
  config.json        what create_model builds (model_from_config's keys), the eval size and the normalization
  model.weights.h5   Keras' weights file of that model
  labels.txt         the class names, one a line
  metadata.json      the versions that wrote it, where its weights came from, the parity measured then
  README.md          the model card: origin, licence, classes, input, parity, how to load it
Written by `--format=preset` of both export commands (effnetv2_tf.export.writer), which reload it and compare its
logits with the model it was written from before it counts as written.
"""

import contextlib
import dataclasses
import datetime
import json
import os

from effnetv2_tf.labels import write_labels  # TensorFlow's file system only when called (the export has it)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
LABELS_FILE = "labels.txt"
METADATA_FILE = "metadata.json"
CARD_FILE = "README.md"
FILES = (CONFIG_FILE, WEIGHTS_FILE, LABELS_FILE, METADATA_FILE, CARD_FILE)
FORMAT_VERSION = 1  # config.json's "format": raised when a new key changes what an older reader would build
OFFICIAL_LICENCE = ("Apache License 2.0, as google/automl publishes the official EfficientNetV2 checkpoints "
                    "(https://github.com/google/automl/blob/master/LICENSE)")


class PresetError(ValueError):
  """A folder is not a preset this version reads; the message names the folder and what is wrong."""


@dataclasses.dataclass
class Card:
  """What a preset says about itself beyond its weights.

  model: the model section model_from_config builds (name, num_classes and any MODEL_CONFIG_KEYS).
  origin: where the weights came from (an official checkpoint's URL or folder, a run's folder and step).
  licence: the licence the weights are under, or what decides it.
  """
  model: dict
  origin: str
  licence: str


def save(model, card, image_size, normalization, labels, folder):
  """Writes config.json, the weights and labels.txt of `model` (float32 weights, logits out) into `folder`; the
  card and metadata follow once the parity is measured (write_card)."""
  os.makedirs(folder, exist_ok=True)
  config = {"format": FORMAT_VERSION, "model": card.model, "image_size": int(image_size),
            "normalization": normalization, "input": "float images in [0, 1], [batch, height, width, 3]",
            "output": "logits, [batch, num_classes]"}
  _write_json(os.path.join(folder, CONFIG_FILE), config)
  model.save_weights(os.path.join(folder, WEIGHTS_FILE))
  write_labels(os.path.join(folder, LABELS_FILE), labels or ())


def write_card(folder, card, parity):
  """metadata.json and README.md of a saved preset; `parity`: what comparing the reloaded preset's logits with
  the original model's measured (a sentence)."""
  import keras
  from effnetv2_tf import __version__
  config = _read_config(folder)
  metadata = {"effnetv2_tf": __version__, "keras": keras.__version__, "written_with_backend": keras.backend.backend(),
              "written": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "origin": card.origin, "licence": card.licence, "parity": parity}
  _write_json(os.path.join(folder, METADATA_FILE), metadata)
  model = config["model"]
  with open(os.path.join(folder, CARD_FILE), "w", encoding="utf-8") as file:
    file.write(f"""# {model['name']}, {model['num_classes']} classes (an effnetv2_tf preset)

- **Origin**: {card.origin}
- **Licence**: {card.licence}
- **Classes**: {model['num_classes']}, named in {LABELS_FILE} by logit index
- **Input**: {config['input']}, any size (evaluated at {config['image_size']} px); the {config['normalization']}
  normalization is inside the model that from_preset returns
- **Output**: {config['output']}
- **Parity**: {parity}
- **Written**: {metadata['written']} by effnetv2_tf {__version__}, Keras {keras.__version__} on
  {metadata['written_with_backend']}

## Load it (Keras 3 on TensorFlow or JAX)

```python
import effnetv2_tf
model = effnetv2_tf.from_preset("path/to/this/folder")
logits = model.predict(images)  # float images in [0, 1]
names = [model.class_names[i] for i in logits.argmax(-1)]
```

`from_preset(folder, include_preprocessing=False)` gives the model without its normalization (inputs normalized
as the training pipeline does), for fine-tuning; effnetv2_tf's trainer starts from it with
`--hparam_str=train.ft_init_ckpt=path/to/this/folder`.
""")


def is_preset(path):
  """Whether `path` is a preset folder (its config.json and weights file): what train.ft_init_ckpt may name."""
  return os.path.isfile(os.path.join(str(path), CONFIG_FILE)) and os.path.isfile(os.path.join(str(path), WEIGHTS_FILE))


def model_config(folder):
  """The model section of a preset (model_from_config's keys): what the trainer takes its model settings from."""
  return _read_config(folder)["model"]


def from_preset(folder, include_preprocessing=True):
  """The Keras model a preset folder holds, its weights loaded, with `class_names` (labels.txt) set on it.

  Args:
    folder: a preset folder (written by `--format=preset`).
    include_preprocessing: True: float images in [0, 1] in (the normalization inside, as in every exported
      format); False: the bare classifier create_model builds (normalized images in), for fine-tuning.

  Returns:
    A keras.Model giving logits, with `class_names` and `image_size` (the size it was evaluated at).
  """
  from effnetv2_tf.model import model_from_config
  config = _read_config(folder)
  weights = os.path.join(folder, WEIGHTS_FILE)
  if not os.path.isfile(weights):
    raise PresetError(f"{folder} has no {WEIGHTS_FILE}: write the preset again (--format=preset).")
  with _float32():
    model = model_from_config(config["model"])
    model.load_weights(weights)
    if include_preprocessing:
      from effnetv2_tf.export.serving import serving_model
      model = serving_model(model, config["normalization"])
  model.class_names = _read_labels(folder)
  model.image_size = config["image_size"]
  return model


@contextlib.contextmanager
def _float32():
  """Builds in float32 whatever global precision policy is set (a preset's weights are float32), then puts the
  policy back."""
  import keras
  before = keras.mixed_precision.global_policy()
  keras.mixed_precision.set_global_policy("float32")
  try:
    yield
  finally:
    keras.mixed_precision.set_global_policy(before)


def _read_config(folder):
  path = os.path.join(folder, CONFIG_FILE)
  if not os.path.isdir(folder):
    raise PresetError(f"Preset folder {folder} does not exist: give the folder that `--format=preset` wrote "
                      "(EXPORT_DIR/preset).")
  try:
    with open(path, encoding="utf-8") as file:
      config = json.load(file)
  except FileNotFoundError:
    raise PresetError(f"{folder} is not a preset (no {CONFIG_FILE}): give the folder that `--format=preset` "
                      "wrote (EXPORT_DIR/preset).") from None
  except json.JSONDecodeError as error:
    raise PresetError(f"{path} cannot be read ({error}): write the preset again.") from None
  if config.get("format", 0) > FORMAT_VERSION:
    raise PresetError(f"{folder} was written by a newer effnetv2_tf (preset format {config.get('format')}, this "
                      f"one reads {FORMAT_VERSION}): upgrade effnetv2_tf.")
  return config


def _read_labels(folder):
  path = os.path.join(folder, LABELS_FILE)
  if not os.path.isfile(path):
    return []
  with open(path, encoding="utf-8") as file:
    return [line.rstrip("\n") for line in file]


def _write_json(path, value):
  with open(path, "w", encoding="utf-8") as file:
    json.dump(value, file, indent=2)
    file.write("\n")
