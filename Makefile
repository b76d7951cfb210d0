# Two entry points for a fresh machine (see README.md):
#   make demo  - install everything, then train a teacher and distill a student on Fashion-MNIST
#   make test  - install everything, then run the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
WORKDIR ?= runs/demo
CONFIG ?= configs/fashion_mnist.py:demo
FMNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: install data demo test quick bench clean

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $@

# MLServer (a real Open Inference Protocol server) for the protocol tests, in a venv of its
# own: its web stack and TensorFlow's need not agree on versions.
MLSERVER_VENV ?= .venv-mlserver
$(MLSERVER_VENV)/.installed:
	$(PYTHON) -m venv $(MLSERVER_VENV)
	$(MLSERVER_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(MLSERVER_VENV)/bin/python -m pip install --quiet mlserver==1.7.1
	touch $@

install: $(VENV)/.installed $(MLSERVER_VENV)/.installed

data: $(FMNIST)
$(FMNIST):
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq dataset-fashion-mnist

# The config names its own few unlabeled images and test set (data.unlabeled, data.test):
# make demo CONFIG=configs/mnist.py:demo WORKDIR=runs/mnist_demo works the same way.
demo: install data
	$(PY) bin/distill.py --config=$(CONFIG) --workdir=$(WORKDIR)

test: install data
	$(PY) -m pytest -q -n 2 tests

# The quick tier for an inner loop (about a minute): everything but the tests marked slow.
quick: install data
	$(PY) -m pytest -q -m "not slow" tests

clean:
	rm -rf $(VENV) $(MLSERVER_VENV) runs
