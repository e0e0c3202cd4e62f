"""The functional core of `ember.nn`: layers as functions of inputs and weights.

Modules in `ember.nn` own parameters and call these.
"""

from ember.nn.functional.activation import (
    celu,
    elu,
    gelu,
    hardsigmoid,
    hardswish,
    hardtanh,
    leaky_relu,
    mish,
    prelu,
    relu,
    relu6,
    selu,
    sigmoid,
    silu,
    softplus,
    softsign,
    tanh,
)
from ember.nn.functional.attention import (
    multi_head_attention_forward,
    scaled_dot_product_attention,
)
from ember.nn.functional.conv import (
    conv1d,
    conv2d,
    conv3d,
    conv_transpose1d,
    conv_transpose2d,
    conv_transpose3d,
)
from ember.nn.functional.dropout import dropout, dropout1d, dropout2d, dropout3d
from ember.nn.functional.embedding import embedding
from ember.nn.functional.linear import bilinear, linear
from ember.nn.functional.loss import (
    cosine_embedding_loss,
    huber_loss,
    l1_loss,
    margin_ranking_loss,
    mse_loss,
    smooth_l1_loss,
    triplet_margin_loss,
)
from ember.nn.functional.loss_classification import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    kl_div,
    nll_loss,
)
from ember.nn.functional.normalization import batch_norm, group_norm, instance_norm, layer_norm
from ember.nn.functional.pool import (
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_avg_pool3d,
    adaptive_max_pool1d,
    adaptive_max_pool2d,
    adaptive_max_pool3d,
    avg_pool1d,
    avg_pool2d,
    avg_pool3d,
    max_pool1d,
    max_pool2d,
    max_pool3d,
)
from ember.nn.functional.rnn import (
    gru,
    gru_cell,
    lstm,
    lstm_cell,
    rnn,
    rnn_relu_cell,
    rnn_tanh_cell,
)
from ember.nn.functional.upsample import interpolate, upsample
from ember.ops.softmax import log_softmax, softmax
