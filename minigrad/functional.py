"""The stateless ops of ``torch.nn.functional``, by the same names: ``import minigrad.functional as F``.

Each name is defined next to its op in ``minigrad/ops/<family>.py``; this module only
gathers them, family by family.
"""

# ruff: noqa: F401

# elementwise activations that are also Tensor methods (ops/elementwise.py)
from minigrad.ops.elementwise import relu, sigmoid, tanh

# linear layers (ops/linalg.py)
from minigrad.ops.linalg import linear

# activations (ops/activation.py)

# dropout (ops/dropout.py)

# embeddings (ops/embedding.py)

# normalisation (ops/norm.py)

# softmax and losses (ops/loss.py)

# attention (ops/attention.py)

# convolution, unfold/fold (ops/conv.py)
# isort: split
from minigrad.ops.conv import conv1d, conv2d, conv_transpose1d, conv_transpose2d, fold, unfold

# pooling (ops/pool.py)
# isort: split
from minigrad.ops.pool import (
    adaptive_avg_pool2d,
    adaptive_max_pool2d,
    avg_pool1d,
    avg_pool2d,
    max_pool1d,
    max_pool2d,
)

# padding (ops/padding.py)
# isort: split
from minigrad.ops.padding import pad

# resampling: interpolate, pixel_shuffle, grid_sample, affine_grid (ops/sample.py)

# detection: boxes, nms, RoI pooling, deformable convolution, focal loss (ops/detection.py)
