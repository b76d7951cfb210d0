"""kd_keras: black-box few-shot knowledge distillation (FS-BBT) with Keras 3 on TensorFlow."""

from setuptools import find_packages, setup

# The stack measured to install and work together (see ../shared/DESIGN.md): TFP 0.25
# imports only with tf-keras present, and tf-keras needs the distribution named
# `tensorflow` (not tensorflow-cpu). `import keras` stays Keras 3.
INSTALL_REQUIRES = [
    "tensorflow==2.21.0",
    "tf-keras==2.21.0",
    "tensorflow-probability==0.25.0",
    "keras==3.15.1",  # measured with kd_keras/_compat.py's internals (tests/test_compat.py)
    "tensorflow-datasets>=4.9,<5",
    "absl-py>=2.1",
    "ml-collections>=1.0",
    "tensorboard>=2.21,<2.22",
    "numpy>=1.26",
    "orjson>=3.9",  # fast, exact JSON for the TF Serving REST protocol
    "tensorflow-serving-api==2.21.0",  # TF Serving gRPC protos (grpcio comes with tensorflow)
    "pillow>=10",  # decodes CIFAR-10 (JPEG) exactly as its README checks it
    "ai-edge-litert==2.3.0",  # LiteRT's interpreter checks exported TFLite students
]

setup(
    name="kd_keras",
    version="0.1.0",
    description="Black-box few-shot knowledge distillation (FS-BBT) for Keras 3",
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    # Only kd_keras at the top level; the repository's configs/ ship as kd_keras.configs
    # (named from any folder: --config=fashion_mnist:quick); bin/ stays in the repository.
    packages=find_packages(include=["kd_keras", "kd_keras.*"]) + ["kd_keras.configs"],
    package_dir={"kd_keras.configs": "configs"},
    install_requires=INSTALL_REQUIRES,
    extras_require={
        "test": ["pytest>=8", "pytest-xdist>=3.5"],  # two test processes: 2 cores
        "bench": ["scikit-learn>=1.4", "matplotlib>=3.8"],
    },
    entry_points={
        "console_scripts": [
            "kd-train-teacher=kd_keras.commands.train_teacher:entry",
            "kd-distill=kd_keras.commands.distill:entry",
            "kd-serve-teacher=kd_keras.commands.serve_teacher:entry",
            "kd-label=kd_keras.commands.label:entry",
        ]
    },
)
