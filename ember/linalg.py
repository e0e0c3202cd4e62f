"""`ember.linalg`: the Array API linear-algebra extension, plus NumPy/PyTorch favourites.

>>> import ember
>>> from ember import linalg
>>> a = ember.tensor([[4.0, 2.0], [2.0, 3.0]])
>>> linalg.det(a)
tensor(8.)
>>> linalg.norm(ember.tensor([3.0, 4.0]))
tensor(5.)
"""
from __future__ import annotations

from ember.ops.decomp import (
    LinAlgError,
    cholesky,
    det,
    eigh,
    eigvalsh,
    inv,
    matrix_power,
    matrix_rank,
    pinv,
    qr,
    slogdet,
    solve,
    svd,
    svdvals,
)
from ember.ops.einsum import einsum
from ember.ops.linalg import (
    cross,
    diagonal,
    inner,
    matmul,
    matrix_transpose,
    outer,
    tensordot,
    trace,
    vecdot,
)
from ember.ops.norm import matrix_norm, norm, vector_norm

__all__ = ["LinAlgError", "cholesky", "cross", "det", "diagonal", "eigh", "eigvalsh", "einsum",
           "inner", "inv", "matmul", "matrix_norm", "matrix_power", "matrix_rank",
           "matrix_transpose", "norm", "outer", "pinv", "qr", "slogdet", "solve", "svd",
           "svdvals", "tensordot", "trace", "vecdot", "vector_norm"]
