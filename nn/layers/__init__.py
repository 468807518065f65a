"""Every layer, one module per family (PyTorch's names and options)."""

from nn.layers.activation import (
    ELU,
    GELU,
    GLU,
    Hardtanh,
    LeakyReLU,
    LogSigmoid,
    LogSoftmax,
    Mish,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from nn.layers.attention import AdditiveAttention, DotProductAttention, MultiheadAttention, NadarayaWatson
from nn.layers.conv import Conv1d, Conv2d, ConvTranspose2d, DeformConv2d
from nn.layers.dropout import Dropout, Dropout2d, DropPath
from nn.layers.linear import Linear
from nn.layers.loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CosineEmbeddingLoss,
    CrossEntropyLoss,
    HuberLoss,
    InfoNCELoss,
    KLDivLoss,
    L1Loss,
    MSELoss,
    MultipleNegativesRankingLoss,
    NLLLoss,
    NTXentLoss,
    SmoothL1Loss,
    TripletMarginLoss,
)
from nn.layers.norm import (
    AdaIN,
    BatchNorm1d,
    BatchNorm2d,
    GroupNorm,
    InstanceNorm2d,
    LayerNorm,
    RMSNorm,
    SyncBatchNorm,
)
from nn.layers.pooling import AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d
from nn.layers.rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from nn.layers.sparse import Embedding, EmbeddingBag
from nn.layers.transformer import (
    CoAttentionLayer,
    LearnedPositionalEncoding,
    PositionalEncoding,
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
    deepnorm_constants,
)
from nn.layers.upsampling import PixelShuffle, PixelUnshuffle, Upsample
