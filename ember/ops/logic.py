"""Comparisons, logical and bitwise functions, and float classification.

None of these has a gradient, so they share two data-driven primitive classes: each
instance is a distinct primitive (its own name in errors, traces and exports).
"""
from __future__ import annotations

from ember._core import dtypes
from ember._core.errors import DTypeError, user_frame
from ember._core.primitive import AbstractValue, Primitive, apply
from ember._core.shapes import broadcast_shapes
from ember._core.tensor import Tensor
from ember.ops._util import as_tensor, aval_of, binary_operands

_KINDS = {"any": "biufV", "bool": "b", "integer": "iu", "integer_or_bool": "biu",
          "numeric": "iufV", "floating": "fV"}


class _Checked(Primitive):
    differentiable = False

    def __init__(self, name: str, np_name: str, accepts: str, gives_bool: bool):
        self.name = name
        self.np_name = np_name
        self.accepts = accepts
        self.gives_bool = gives_bool

    def check_dtype(self, *operands):
        """Raise DTypeError unless every operand (Tensor or AbstractValue) has a kind this
        function accepts."""
        kinds = _KINDS[self.accepts]
        if all(_np_kind(operand) in kinds for operand in operands):
            return
        listed = ", ".join(operand.dtype.name for operand in operands)
        raise DTypeError(f"{self.name} expects {self.accepts.replace('_', ' or ')} "
                         f"operands, got {listed} at {user_frame()}")

    def result_dtype(self, dtype):
        return dtypes.bool_ if self.gives_bool else dtype


def _np_kind(operand) -> str:
    if isinstance(operand, Tensor):
        return operand._data.dtype.kind
    return operand.dtype.np.kind


class Predicate(_Checked):
    """A one-operand non-differentiable function (isnan, logical_not, bitwise_invert...)."""

    def infer(self, x):
        self.check_dtype(x)
        return AbstractValue(x.shape, self.result_dtype(x.dtype), x.device)

    def forward(self, xp, x):
        return getattr(xp, self.np_name)(x)


class Relation(_Checked):
    """A two-operand non-differentiable function (comparisons, logical_and, bitwise_or...)."""

    def infer(self, x1, x2):
        a, b = aval_of(x1), aval_of(x2)
        self.check_dtype(a, b)
        shape = broadcast_shapes(a.shape, b.shape, op=self.name)
        return AbstractValue(shape, self.result_dtype(dtypes.promote_types(a.dtype, b.dtype)),
                             a.device)

    def forward(self, xp, x1, x2):
        return getattr(xp, self.np_name)(x1, x2)


def _predicate(name, np_name, accepts, gives_bool=True):
    prim = Predicate(name, np_name, accepts, gives_bool)

    def function(x, /):
        x = x if isinstance(x, Tensor) else as_tensor(x)
        prim.check_dtype(x)
        return apply(prim, x)

    function.__name__ = name
    function.__doc__ = f"Elementwise {name} (no gradient)."
    return function


def _relation(name, np_name, accepts, gives_bool=True):
    prim = Relation(name, np_name, accepts, gives_bool)

    def function(x1, x2, /):
        x1, x2 = binary_operands(x1, x2)
        prim.check_dtype(*(operand for operand in (x1, x2) if isinstance(operand, Tensor)))
        return apply(prim, x1, x2)

    function.__name__ = name
    function.__doc__ = f"Elementwise {name} with broadcasting (no gradient)."
    return function


equal = _relation("equal", "equal", "any")
not_equal = _relation("not_equal", "not_equal", "any")
less = _relation("less", "less", "numeric")
less_equal = _relation("less_equal", "less_equal", "numeric")
greater = _relation("greater", "greater", "numeric")
greater_equal = _relation("greater_equal", "greater_equal", "numeric")
logical_and = _relation("logical_and", "logical_and", "any")
logical_or = _relation("logical_or", "logical_or", "any")
logical_xor = _relation("logical_xor", "logical_xor", "any")
logical_not = _predicate("logical_not", "logical_not", "any")
bitwise_and = _relation("bitwise_and", "bitwise_and", "integer_or_bool", gives_bool=False)
bitwise_or = _relation("bitwise_or", "bitwise_or", "integer_or_bool", gives_bool=False)
bitwise_xor = _relation("bitwise_xor", "bitwise_xor", "integer_or_bool", gives_bool=False)
bitwise_left_shift = _relation("bitwise_left_shift", "left_shift", "integer", gives_bool=False)
bitwise_right_shift = _relation("bitwise_right_shift", "right_shift", "integer",
                                gives_bool=False)
bitwise_invert = _predicate("bitwise_invert", "invert", "integer_or_bool", gives_bool=False)
isnan = _predicate("isnan", "isnan", "numeric")
isinf = _predicate("isinf", "isinf", "numeric")
isfinite = _predicate("isfinite", "isfinite", "numeric")
signbit = _predicate("signbit", "signbit", "floating")
