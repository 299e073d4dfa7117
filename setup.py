from setuptools import find_packages, setup

# TensorFlow is not a plain requirement: its CPU/GPU build (`tensorflow`) and its TPU build (`tensorflow-tpu`)
# ship the same import package, and requiring one would pull it over the other on a TPU VM. Each install
# route names its build as an extra: [cpu] (the README's set-up), [gpu] or [tpu].
TF_VERSIONS = ">=2.20,<2.22"  # 2.20: the newest TPU build; 2.21: CPU and GPU
# Keras 3 on JAX, the second engine, with Orbax (JAX's checkpoint library: atomic saves, local and gs://, one part
# per host on a pod) and TensorFlow's CPU build for the input pipeline only (tf.data). Never beside [tpu]:
# jax[tpu] and tensorflow-tpu would both load libtpu.
JAX_ROUTE = ["orbax-checkpoint>=0.12.8", f"tensorflow-cpu{TF_VERSIONS}"]

setup(
    name="effnetv2_tf",
    version="0.3.0",
    description="EfficientNetV2 for TensorFlow 2 / Keras 3: models, progressive training on TPU/GPU/CPU, export.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    # hparams/ and tpu/ sit beside the package in the repository (the layout a reader meets first) and install as
    # effnetv2_tf.hparams and effnetv2_tf.tpu: nothing generic on the top-level import path.
    packages=find_packages(include=["effnetv2_tf", "effnetv2_tf.*"]) + ["effnetv2_tf.hparams", "effnetv2_tf.tpu"],
    package_dir={"effnetv2_tf.hparams": "hparams", "effnetv2_tf.tpu": "tpu"},
    package_data={"effnetv2_tf": ["demo_data/README.md", "demo_data/*/*/*.jpg", "labels/*.txt", "labels/README.md"]},
    entry_points={"console_scripts": ["effnetv2-tf = effnetv2_tf.cli:run"]},  # main.py, installed
    install_requires=[
        "keras>=3.10,<4",
        "tensorflow-datasets>=4.9",
        "ml-collections>=1.0",
        "absl-py>=2.0",
        "tensorboard>=2.16",  # tf.summary writes nothing without it; TF 2.21 no longer depends on it
        "matplotlib>=3.7",  # the training.png plot
        "pyyaml>=6",
    ],
    extras_require={
        "cpu": [f"tensorflow{TF_VERSIONS}"],
        "gpu": [f"tensorflow[and-cuda]{TF_VERSIONS}"],
        # tensorflow-tpu 2.20 asks for libtpu~=0.0.14, which admits releases that no longer carry TF's TPU
        # ops (0.0.52 aborts `import tensorflow`): pin the one it was built with.
        "tpu": ["tensorflow-tpu==2.20.*", "libtpu==0.0.14"],
        "tpu-remote": ["cloud-tpu-client>=0.10"],  # only to reach a TPU by name from another VM
        "jax": ["jax>=0.10.2", *JAX_ROUTE],  # the CPU
        "jax-cuda": ["jax[cuda]>=0.10.2", *JAX_ROUTE],  # NVIDIA GPUs (CUDA 12 from pip)
        "jax-tpu": ["jax[tpu]>=0.10.2", *JAX_ROUTE],  # a TPU VM (v4 to TPU7x): libtpu comes with jax
        # The export's formats: their writers (Keras' ONNX exporter uses tf2onnx under TensorFlow) and the runtimes
        # that check each file as it is written (onnxruntime; ai-edge-litert, LiteRT's interpreter, as tf.lite's
        # is deprecated). Kept out of the base install: a training machine needs none of them.
        "export": ["tf2onnx>=1.17", "onnx>=1.17", "onnxruntime>=1.20", "ai-edge-litert>=2.0"],
        # pytest-xdist: 2 workers on 2 cores ran the fast tier in 3.5 minutes instead of 6.4 (tests/README.md);
        # setuptools and wheel: tests/test_demo.py builds and installs the package's wheel without the network;
        # filelock: the JAX processes the tests start share one compilation cache, which JAX locks with it.
        "test": ["pytest>=8", "pytest-xdist>=3.5", "pillow>=10", "setuptools>=64", "wheel", "filelock>=3.12"],
    },
)
