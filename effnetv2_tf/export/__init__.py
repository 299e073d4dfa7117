"""Models out of the project, in the formats people serve, each checked by the runtime that reads it.

  python -m effnetv2_tf.export --official imagenet --model efficientnetv2-b0 --format=saved_model,onnx,preset export/b0
  python main.py --mode=export --model_dir=runs/photos --format=saved_model,onnx,litert,litert-int8

export an official automl checkpoint (writer.export_official) or one of our runs (writer.export_run).
  formats      the format table: what each writes into EXPORT_DIR, what reads it (no TensorFlow)
  writer       the export: the folder, each format written and checked
  saved_model  the TF-Hub layout (TensorFlow SavedModels, with serving_bytes)
  serving      the model the file formats are written from: [0, 1] images in, logits out
  onnx, litert each format's writer (Keras' exporters) and reader (onnxruntime, ai-edge-litert)
               (a Keras preset's folder, written and read: effnetv2_tf.presets)
  photos       the photos the checks run on
  command      python -m effnetv2_tf.export
"""
