"""The eval split both engines evaluate, and the result they report.

Batches are full: the last one is padded with examples of weight 0 (eval_dataset's padded), so every example
counts exactly once on any number of devices and XLA sees one shape.
"""

from effnetv2_tf.data.pipeline import Preprocessing, eval_dataset


def padded_eval_split(config, source, normalization, compute_dtype, counts=None, input_context=None):
  """The eval split at the config's eval size in full batches of eval.batch_size, the last one padded with
  examples of weight 0 (both engines evaluate these)."""
  return eval_dataset(source, Preprocessing(config.eval.image_size, normalization, compute_dtype),
                      batch_size=config.eval.batch_size, padded=True, num_classes=config.model.num_classes,
                      input_context=input_context, counts=counts)


def eval_result(step, totals, source, use_ema):
  """{"step", "top1", "top5", "examples", "ema"} from the (top-1 hits, top-5 hits, examples) of a pass over
  `source`; a pass that read no example is a ValueError naming it."""
  top1, top5, examples = totals
  if examples == 0:
    raise ValueError(f"No eval example of {source} could be read: check data.eval_files and the files.")
  return {"step": step, "top1": top1 / examples, "top5": top5 / examples, "examples": int(examples), "ema": use_ema}


def accuracy_text(result, num_classes):
  """"top-1 0.4600" of an eval result, and ", top-5 0.8800" where there are more than 5 classes (with 5 or fewer
  every example is in its top 5)."""
  return f"top-1 {result['top1']:.4f}" + (f", top-5 {result['top5']:.4f}" if num_classes > 5 else "")
