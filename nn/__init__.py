"""nn: modules, layers, initialisation, losses, optimizers and models, with PyTorch's names."""

from nn import init
from nn.module import (
    Flatten,
    Identity,
    Module,
    ModuleDict,
    ModuleList,
    Parameter,
    ParameterList,
    Sequential,
    Unflatten,
)
from nn.layers import *  # every layer, listed in nn/layers/__init__.py
from nn import amp, optim, parallel, utils  # (they build on the layers above)
from nn import decoding, models
from nn import modules
