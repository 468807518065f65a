"""Every documented model, by name: ``nn.models.resnet18()`` or ``nn.models.build("resnet18")``."""

from nn.models.abn import AttentionBranchNetwork, abn_resnet_small
from nn.models.bert import (
    BertConfig,
    BertForMaskedLM,
    BertForPreTraining,
    BertForSequenceClassification,
    BertModel,
    SentenceEncoder,
    bert_base,
    bert_small,
    mean_pooling,
)
from nn.models.convnext import ConvNeXt, convnext_mini, convnext_small, convnext_tiny
from nn.models.efficientnet import (
    EfficientNet,
    compound_scaling,
    efficientnet,
    efficientnet_b0,
    efficientnet_b1,
    efficientnet_b2,
    efficientnet_b3,
    efficientnet_b4,
    efficientnet_b5,
    efficientnet_b6,
    efficientnet_b7,
)
from nn.models.faster_rcnn import FasterRCNN, faster_rcnn_small
from nn.models.inception import Inception, inception_small
from nn.models.mlp import mlp
from nn.models.mobilenet import MobileNetV1, MobileNetV2, mobilenet_v1, mobilenet_v2
from nn.models.resnet import (
    BasicBlock,
    Bottleneck,
    ResNet,
    SEBlock,
    plain_cnn_small,
    resnet18,
    resnet34,
    resnet50,
    resnet_small,
    se_resnet_small,
)
from nn.models.seq2seq import EncoderDecoder, Seq2Seq, Seq2SeqAttention, Seq2SeqEncoder
from nn.models.ssd import SSD, ssd_small
from nn.models.stargan_v2 import (
    AdainResBlk,
    Discriminator,
    Generator,
    MappingNetwork,
    ResBlk,
    StarGANv2,
    StyleEncoder,
    stargan_v2,
    stargan_v2_small,
)
from nn.models.transformer_seq2seq import TransformerSeq2Seq
from nn.models.unet import UNet, unet_small
from nn.models.vit import VisionTransformer, vit, vit_b_16, vit_b_32, vit_l_16, vit_tiny

# Every lowercase function imported above builds a model, except the scaling rule and the pooling.
_NOT_MODELS = ("compound_scaling", "mean_pooling")
_BUILDERS = {
    name: value
    for name, value in dict(globals()).items()
    if callable(value) and name.islower() and not name.startswith("_") and name not in _NOT_MODELS
}


def names() -> list:
    """The names ``build`` accepts."""
    return sorted(_BUILDERS)


def build(name: str, **kwargs):
    """The model called ``name`` (see ``names()``), built with ``kwargs``."""
    if name not in _BUILDERS:
        raise ValueError(f"nn.models: unknown model {name!r}; known: {', '.join(names())}")
    return _BUILDERS[name](**kwargs)
