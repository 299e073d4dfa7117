from setuptools import find_packages, setup

setup(
    name="effnetv2_tf",
    version="0.1.0",
    description="EfficientNetV2 for TensorFlow 2 / Keras 3: models, progressive training on TPU/GPU/CPU, export.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["effnetv2_tf", "effnetv2_tf.*", "hparams", "tpu"]),
    package_data={"effnetv2_tf": ["demo_data/README.md", "demo_data/*/*/*.jpg", "labels/*.txt", "labels/README.md"]},
    py_modules=["main"],
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "keras>=3.10,<4",
        "tensorflow-datasets>=4.9",
        "ml-collections>=1.0",
        "absl-py>=2.0",
        "tensorboard>=2.16",  # tf.summary writes nothing without it; TF 2.21 no longer depends on it
        "matplotlib>=3.7",  # the training.png plot
        "pyyaml>=6",
    ],
    extras_require={
        "test": ["pytest>=8", "pillow>=10"],
        "tpu": ["cloud-tpu-client>=0.10"],
    },
)
