"""ember: a deep learning framework — NumPy-like tensors with autograd, on CPU and GPU."""

from __future__ import annotations

__version__ = "0.1.0"

from ember._core import allocator as _allocator  # noqa: E402

_allocator.tune()

from ember import autograd, debug, linalg, random  # noqa: E402
from ember._core.autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from ember._core.device import Device, cuda_is_available, device
from ember._core.dtypes import (
    DType,
    bfloat16,
    bool_,
    can_cast,
    finfo,
    float16,
    float32,
    float64,
    iinfo,
    int8,
    int16,
    int32,
    int64,
    isdtype,
    result_type,
    uint8,
    uint16,
    uint32,
    uint64,
)
from ember._core.errors import DeviceError, DTypeError, EmberError, ShapeError
from ember._core.primitive import AbstractValue, Primitive, apply
from ember._core.tensor import Tensor
from ember._methods import bind as _bind
from ember.func import grad, jvp, value_and_grad, vjp
from ember.ops.creation import (
    arange,
    asarray,
    empty,
    empty_like,
    eye,
    from_dlpack,
    from_numpy,
    full,
    full_like,
    linspace,
    meshgrid,
    ones,
    ones_like,
    tensor,
    tril,
    triu,
    zeros,
    zeros_like,
)
from ember.ops.decomp import LinAlgError
from ember.ops.elementwise import (
    abs,
    acos,
    acosh,
    add,
    asin,
    asinh,
    astype,
    atan,
    atan2,
    atanh,
    ceil,
    clip,
    conj,
    copysign,
    cos,
    cosh,
    divide,
    exp,
    expm1,
    floor,
    floor_divide,
    hypot,
    imag,
    log,
    log1p,
    log2,
    log10,
    logaddexp,
    maximum,
    minimum,
    multiply,
    negative,
    positive,
    pow,
    real,
    reciprocal,
    remainder,
    round,
    sigmoid,
    sign,
    sin,
    sinh,
    sqrt,
    square,
    subtract,
    tan,
    tanh,
    trunc,
    where,
)
from ember.ops.indexing import getitem, index_put, setitem
from ember.ops.linalg import cross, diagonal, einsum, inner, matmul, outer, tensordot, trace, vecdot
from ember.ops.logic import (
    bitwise_and,
    bitwise_invert,
    bitwise_left_shift,
    bitwise_or,
    bitwise_right_shift,
    bitwise_xor,
    equal,
    greater,
    greater_equal,
    isfinite,
    isinf,
    isnan,
    less,
    less_equal,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    not_equal,
    signbit,
)
from ember.ops.movement import (
    broadcast_arrays,
    broadcast_to,
    concat,
    expand_dims,
    flip,
    matrix_transpose,
    moveaxis,
    permute_dims,
    repeat,
    reshape,
    roll,
    split,
    squeeze,
    stack,
    swapaxes,
    tile,
    unstack,
)
from ember.ops.reduce import (
    all,
    any,
    cumprod,
    cumsum,
    cumulative_sum,
    logsumexp,
    max,
    mean,
    min,
    prod,
    std,
    sum,
    var,
)
from ember.ops.scatter import (
    gather,
    index_add,
    masked_fill,
    pad,
    scatter_add,
    take,
    take_along_axis,
)
from ember.ops.search import (
    argmax,
    argmin,
    argsort,
    count_nonzero,
    kthvalue,
    nonzero,
    searchsorted,
    sort,
    topk,
)
from ember.ops.sets import unique, unique_all, unique_counts, unique_inverse, unique_values
from ember.ops.special import erf
from ember.random import manual_seed, rand, randint, randn

bool = bool_  # noqa: A001  (Array API name; Python's bool stays reachable as builtins.bool)
clamp = clip
e = 2.718281828459045
inf = float("inf")
nan = float("nan")
pi = 3.141592653589793
newaxis = None
__array_api_version__ = "2023.12"

_bind()

# Built on the ops above: layers, optimizers, data, the training API, files, visualization.
from ember import callbacks, data, datasets, io, metrics, nn, optim, train, viz  # noqa: E402
from ember._functional import Input  # noqa: E402
from ember.io import load, save  # noqa: E402
from ember.jit import compile, jit, symbol  # noqa: E402  (ember.jit the function; the package by full name)
from ember.models import Model, Sequential  # noqa: E402
