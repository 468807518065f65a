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
from minigrad.ops.activation import elu, gelu, glu, hardtanh, leaky_relu, logsigmoid, mish, relu6, silu, softplus

# dropout (ops/dropout.py)
from minigrad.ops.dropout import drop_path, dropout, dropout2d

# embeddings (ops/embedding.py)
from minigrad.ops.embedding import embedding, one_hot

# normalisation (ops/norm.py)
from minigrad.ops.norm import batch_norm, group_norm, layer_norm, normalize, rms_norm

# softmax and losses (ops/loss.py)

# attention (ops/attention.py)

# convolution, unfold/fold (ops/conv.py)

# pooling (ops/pool.py)

# padding (ops/padding.py)

# resampling: interpolate, pixel_shuffle, grid_sample, affine_grid (ops/sample.py)

# detection: boxes, nms, RoI pooling, deformable convolution, focal loss (ops/detection.py)
