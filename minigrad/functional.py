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
from minigrad.ops.embedding import embedding, embedding_bag, one_hot

# normalisation (ops/norm.py)
from minigrad.ops.norm import batch_norm, group_norm, instance_norm, layer_norm, normalize, rms_norm

# softmax and losses (ops/loss.py)
from minigrad.ops.loss import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cosine_embedding_loss,
    cosine_similarity,
    cross_entropy,
    entropy,
    focal_loss,
    huber_loss,
    js_div,
    kl_div,
    l1_loss,
    log_softmax,
    margin_ranking_loss,
    mse_loss,
    nll_loss,
    pairwise_distance,
    smooth_l1_loss,
    soft_f1_loss,
    softmax,
    triplet_margin_loss,
)

# self-supervised and ranking losses: NT-Xent, InfoNCE, multiple negatives ranking, SimSiam's
# negative cosine (ops/contrastive.py)
from minigrad.ops.contrastive import info_nce, multiple_negatives_ranking_loss, negative_cosine_similarity, nt_xent

# attention (ops/attention.py)
from minigrad.ops.attention import scaled_dot_product_attention

# convolution, unfold/fold (ops/conv.py)
from minigrad.ops.conv import conv1d, conv2d, conv_transpose1d, conv_transpose2d, fold, unfold

# pooling (ops/pool.py)
from minigrad.ops.pool import (
    adaptive_avg_pool2d,
    adaptive_max_pool2d,
    avg_pool1d,
    avg_pool2d,
    max_pool1d,
    max_pool2d,
)

# padding (ops/padding.py)
from minigrad.ops.padding import pad

# resampling: interpolate, pixel_shuffle, grid_sample, affine_grid (ops/sample.py)
from minigrad.ops.sample import affine_grid, grid_sample, interpolate, pixel_shuffle, pixel_unshuffle

# detection: boxes, nms, RoI pooling, deformable convolution, focal loss (ops/detection.py)
from minigrad.ops.detection import (
    batched_nms,
    box_area,
    box_convert,
    box_iou,
    deform_conv2d,
    generalized_box_iou,
    nms,
    roi_align,
    roi_pool,
    sigmoid_focal_loss,
)
