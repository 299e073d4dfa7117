"""ONNX: Keras' exporter (tf2onnx under the TensorFlow backend) writes the serving model; onnxruntime reads it.

The file takes `images` float32 [batch, height, width, 3] in [0, 1], every dimension but the channels dynamic, and
gives `logits` [batch, classes]; the class names, when known, travel in its metadata ("class_names", one a line).
"""

import warnings

import numpy as np

from effnetv2_tf.export.runtimes import needs


def write(served, path, labels=None):
  """Writes `served` (serving.serving_model) to `path` (.onnx) with named inputs, outputs and dimensions."""
  onnx = needs("onnx", "writing ONNX")
  needs("tf2onnx", "writing ONNX")
  with warnings.catch_warnings():  # Keras' patch of tf2onnx for NumPy 2 probes np.object, which warns
    warnings.filterwarnings("ignore", message="In the future `np.object`", category=FutureWarning)
    served.export(path, format="onnx", verbose=False)
  # tf2onnx names what it cannot know ("Identity:0", "unk__468"): the names a user of the file reads instead.
  graph_file = onnx.load(path)
  graph = graph_file.graph
  given = graph.output[0].name
  for node in graph.node:
    node.output[:] = ["logits" if name == given else name for name in node.output]
  graph.output[0].name = "logits"
  for dim, name in zip(graph.input[0].type.tensor_type.shape.dim, ("batch", "height", "width")):
    dim.dim_param = name
  graph.output[0].type.tensor_type.shape.dim[0].dim_param = "batch"
  if labels:
    entry = graph_file.metadata_props.add()
    entry.key, entry.value = "class_names", "\n".join(labels)
  onnx.checker.check_model(graph_file)
  onnx.save(graph_file, path)
  return path


def runner(path):
  """onnxruntime's session of the file at `path`, as a function of float images [N, H, W, 3] in [0, 1] -> logits."""
  runtime = needs("onnxruntime", "checking ONNX")
  session = runtime.InferenceSession(path, providers=["CPUExecutionProvider"])
  return lambda images: session.run(["logits"], {"images": np.asarray(images, np.float32)})[0]
