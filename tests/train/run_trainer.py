"""Runs a tiny training in its own process for the trainer tests and prints a JSON summary.

Logical CPU devices (MirroredStrategy over 2 CPUs), TF_CONFIG (MultiWorkerMirrored) and the Keras backend
(--engine=jax) must be set before TensorFlow or Keras start, hence a separate process.
  python -m tests.train.run_trainer --strategy=mirrored --logical_cpus=2 --model_dir=... --data_dir=...
  XLA_FLAGS=--xla_force_host_platform_device_count=8 python -m tests.train.run_trainer --engine=jax ...
--initial_weights=FILE.npz starts a new run from the weights a --weights_out wrote at its start (start_i; the EMA from them);
--weights_out=FILE.npz writes the weights at the start (start_i) and the end (weight_i) and the EMA's (shadow_i).
--logits_out=FILE.npz writes the logits of the run's latest checkpoint (EMA weights, read into a float32 model on
this backend) on 4 uniform [0, 1) images at the eval size (images, logits): what its export must give.
--coordinator_address, --num_processes, --process_id: one of several processes of a JAX run (its spec's join);
--input_pipelines=N: one JAX process fed the global batches N processes would read (their rows concatenated).
"""

import argparse
import json
import os
import sys

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--engine", default="tf")
  parser.add_argument("--initial_weights")
  parser.add_argument("--weights_out")
  parser.add_argument("--logits_out")
  parser.add_argument("--coordinator_address")
  parser.add_argument("--num_processes", type=int)
  parser.add_argument("--process_id", type=int)
  parser.add_argument("--input_pipelines", type=int, default=1)
  parser.add_argument("--strategy", default="default")
  parser.add_argument("--logical_cpus", type=int, default=1)
  parser.add_argument("--model_dir", required=True)
  parser.add_argument("--data_dir", required=True)
  parser.add_argument("--hparam_str", default="")
  parser.add_argument("--finish", action="store_true", help="the final eval after training (RESULT's eval)")
  parser.add_argument("--evaluate_only", action="store_true",
                      help="no training: the padded eval of the raw weights next to one unpadded pass")
  args = parser.parse_args()
  from effnetv2_tf import engines
  engine = engines.get(args.engine)
  launch = engines.Launch(strategy=args.strategy, coordinator_address=args.coordinator_address,
                          num_processes=args.num_processes, process_id=args.process_id)
  os.environ["KERAS_BACKEND"] = engine.keras_backend
  engine.join(launch)

  import tensorflow as tf
  if args.logical_cpus > 1:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * args.logical_cpus)

  from effnetv2_tf import hparams
  from tests.helpers import TINY_TRAINER
  from effnetv2_tf.run_dir import RunDir
  from effnetv2_tf.train.run_log import read_rows
  from effnetv2_tf.train.preemption import PREEMPTED_EXIT_STATUS, Preempted
  from effnetv2_tf.train.trainer import Trainer

  overrides = ",".join(filter(None, [TINY_TRAINER, args.hparam_str]))
  config = hparams.with_values(hparams.resolve(hparams.override(hparams.get_config("demo"), overrides)),
                               {"runtime.engine": engine.name})
  engine_class = engine.engine_class()
  if args.input_pipelines > 1:
    engine_class = pipelines_engine(engine_class, args.input_pipelines)
  trainer = Trainer(config, args.model_dir, args.data_dir, engine.runtime(launch), engine_class)
  start = weights_of(trainer.engine)
  if args.initial_weights:
    given = np.load(args.initial_weights)
    start = [given[f"start_{i}"] for i in range(len(start))]
    set_weights(trainer.engine, start)
  if args.evaluate_only:
    print("RESULT " + json.dumps({**trainer.evaluate(use_ema=False), **_unpadded_eval(trainer, config),
                                  "replicas": trainer.engine.replicas}))
    return
  try:
    trainer.train()
  except Preempted as stopped:  # as main.py reports it
    print(stopped, file=sys.stderr)
    sys.exit(PREEMPTED_EXIT_STATUS)
  evaluation = trainer.finish() if args.finish else None
  model = trainer.engine.state.model
  values = weights_of(trainer.engine)
  if args.weights_out and trainer.is_chief:
    np.savez(args.weights_out, **{f"start_{i}": w for i, w in enumerate(start)},
             **{f"weight_{i}": w for i, w in enumerate(values)},
             **{f"shadow_{i}": w for i, w in enumerate(shadows_of(trainer.engine))})
  if args.logits_out:
    np.savez(args.logits_out, **checkpoint_logits(args.model_dir, config))
  weights = [float(np.sum(w, dtype=np.float64)) for w in values]
  kernels, start_kernels = ([float(np.sum(w, dtype=np.float64)) for v, w in zip(model.weights, of)
                             if v.path.endswith("kernel")] for of in (values, start))
  print("RESULT " + json.dumps({"replicas": trainer.engine.replicas, "step": trainer.step, "pid": os.getpid(),
                                "losses": [row["loss"] for row in read_rows(RunDir(args.model_dir).history_file)],
                                "weights": weights, "kernels": kernels, "start_kernels": start_kernels,
                                "eval": evaluation}))


def pipelines_engine(engine_class, count):
  """`engine_class` (JaxEngine) fed, in one process, the global batches of `count` processes: each step the rows
  of their `count` input pipelines' batches, in process order."""
  import tensorflow as tf

  class PipelinesEngine(engine_class):
    def batches(self, dataset_fn):
      pipelines = [dataset_fn(tf.distribute.InputContext(count, index, count)).as_numpy_iterator()
                   for index in range(count)]
      return (tuple(np.concatenate(parts) for parts in zip(*batches)) for batches in zip(*pipelines))

  return PipelinesEngine


def checkpoint_logits(model_dir, config):
  """{"images", "logits"}: the latest checkpoint's EMA model in float32 on 4 uniform images at the eval size."""
  import keras
  from effnetv2_tf.data.preprocessing import normalize
  from effnetv2_tf.model import get_model_spec
  from effnetv2_tf.run_dir import RunDir
  from effnetv2_tf.train.warm_start import load_run_model
  keras.mixed_precision.set_global_policy("float32")
  model = load_run_model(RunDir(model_dir).latest_checkpoint(), config.model)
  size = config.eval.image_size
  images = np.random.default_rng(0).uniform(0, 1, (4, size, size, 3)).astype("float32")
  inputs = np.asarray(normalize(images * 255.0, get_model_spec(config.model.name).normalization), "float32")
  return {"images": images, "logits": np.asarray(model(inputs, training=False))}


def weights_of(engine):
  """The engine's model weights as NumPy arrays, in model.get_weights()'s order."""
  if hasattr(engine.state, "model_weights"):  # JaxState: the step's arrays, not the variables
    return engine.state.model_weights()
  return engine.state.model.get_weights()


def shadows_of(engine):
  """The EMA's averages (ema.averaged_variables' order) as NumPy arrays."""
  if hasattr(engine.state, "model_weights"):
    return [np.asarray(shadow) for shadow in engine.state.arrays["shadows"]]
  return [shadow.numpy() for shadow in engine.state.ema.shadows]


def set_weights(engine, weights):
  """`weights` (model.get_weights()'s order) as the run's, the EMA starting from them."""
  if hasattr(engine.state, "model_weights"):
    engine.state.set_model_weights(weights)
  else:
    engine.state.model.set_weights(weights)
    engine.state.ema.reset()


def _unpadded_eval(trainer, config):
  """Top-1 / top-5 of the raw weights on every eval example in one unpadded batch, eagerly."""
  import numpy as np
  from effnetv2_tf.data.pipeline import Preprocessing, eval_dataset
  eval_images = Preprocessing(config.eval.image_size, trainer.spec.normalization)
  images, labels = next(iter(eval_dataset(trainer.engine.evaluator.source, eval_images, batch_size=100_000,
                                          num_classes=config.model.num_classes)))
  logits = trainer.engine.state.model(images, training=False).numpy()
  targets = np.argmax(labels.numpy(), -1)
  ranks = (logits > logits[np.arange(len(targets)), targets][:, None]).sum(-1)  # classes scoring higher
  return {"reference_examples": len(targets), "reference_top1": float(np.mean(ranks < 1)),
          "reference_top5": float(np.mean(ranks < 5))}


if __name__ == "__main__":
  main()
