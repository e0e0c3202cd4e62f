"""Einstein summation: one primitive whose vjp is again an einsum.

The public `einsum` normalizes the subscripts first: `...` becomes explicit letters, the
implicit output (letters seen once, in alphabetical order, broadcast axes first) is written
out, and size-1 axes are broadcast explicitly. The primitive then only ever sees
"ab,bc->ac"-style strings whose letters have one size each, which keeps the vjp simple:
the gradient of operand i is the einsum of the output gradient with all other operands,
producing operand i's subscripts.
"""
from __future__ import annotations

import string

from ember._core import dtypes
from ember._core.primitive import AbstractValue, Primitive, apply, shape_error
from ember._core.tensor import Tensor
from ember.ops import movement
from ember.ops._util import as_tensor, cast

__all__ = ["einsum"]

_LETTERS = string.ascii_letters
# Measured with NumPy 2.4: optimize=True costs ~9 us of path search per call, but routes large
# two-operand contractions through BLAS (256x256 matmul: 1.9 ms -> 0.26 ms).
_OPTIMIZE_ABOVE = 4096


def _split(subscripts: str):
    """(input terms, output term) of normalized subscripts."""
    inputs, output = subscripts.split("->")
    return inputs.split(","), output


class Einsum(Primitive):
    def infer(self, *operands, subscripts):
        terms, output = _split(subscripts)
        sizes = {}
        for term, operand in zip(terms, operands, strict=True):
            sizes.update(zip(term, operand.shape, strict=True))
        return AbstractValue(tuple(sizes[letter] for letter in output), operands[0].dtype,
                             operands[0].device)

    def forward(self, xp, *operands, subscripts):
        dtype = operands[0].dtype
        if dtype.itemsize < 4 and dtype.kind not in "biu":  # no float16/bfloat16 kernels
            operands = tuple(operand.astype(xp.float32) for operand in operands)
        optimize = len(operands) > 2 or max(o.size for o in operands) > _OPTIMIZE_ABOVE
        out = xp.einsum(subscripts, *operands, optimize=optimize)
        return xp.asarray(out).astype(dtype, copy=False)

    def vjp(self, ctx, gy):
        terms, output = _split(ctx.params["subscripts"])
        operands = ctx.inputs
        sizes = {}
        for term, operand in zip(terms, operands, strict=True):
            sizes.update(zip(term, operand.shape, strict=True))
        grads = []
        for index, term in enumerate(terms):
            if ctx.node.edges[index] is None:
                grads.append(None)
                continue
            others = [(output, gy)] + [(t, o) for i, (t, o) in
                                       enumerate(zip(terms, operands, strict=True)) if i != index]
            grads.append(_operand_grad(term, others, sizes, gy))
        return tuple(grads)


def _constant(like: Tensor, fill, shape) -> Tensor:
    xp = like._device.xp
    data = xp.ones(shape, like._data.dtype) if fill == "ones" else xp.eye(*shape,
                                                                         dtype=like._data.dtype)
    return Tensor(data, like._device)


def _operand_grad(term: str, others: list, sizes: dict, gy: Tensor) -> Tensor:
    """einsum of the other operands (gy included) producing `term`."""
    terms = [t for t, _ in others]
    tensors = [t for _, t in others]
    available = set("".join(terms))
    # Letters only this operand carries were summed away inside it: their gradient is
    # broadcast, which an all-ones operand expresses.
    missing = "".join(dict.fromkeys(letter for letter in term if letter not in available))
    if missing:
        terms.append(missing)
        tensors.append(_constant(gy, "ones", tuple(sizes[letter] for letter in missing)))
    # A repeated letter (a diagonal, "ii") gets a fresh letter tied to it by an identity.
    used = set(term) | available
    fresh = (letter for letter in _LETTERS if letter not in used)
    result, seen = "", set()
    for letter in term:
        if letter in seen:
            new = next(fresh)
            terms.append(letter + new)
            tensors.append(_constant(gy, "eye", (sizes[letter], sizes[letter])))
            result += new
        else:
            seen.add(letter)
            result += letter
    return apply(EINSUM, *tensors, subscripts=",".join(terms) + "->" + result)


EINSUM = Einsum()


def _normalize(subscripts: str, operands: list):
    """Explicit subscripts without '...' plus each letter's size; raises ShapeError."""
    subscripts = subscripts.replace(" ", "")
    if subscripts.count("->") > 1:
        raise shape_error("einsum", f"subscripts {subscripts!r} have more than one '->'")
    inputs, output = subscripts.split("->") if "->" in subscripts else (subscripts, None)
    terms = inputs.split(",")
    if len(terms) != len(operands):
        raise shape_error("einsum", f"subscripts {subscripts!r} name {len(terms)} operands "
                          f"but {len(operands)} were given", *operands)
    for term in terms + ([output] if output is not None else []):
        if term.count("...") > 1 or not set(term.replace("...", "")) <= set(_LETTERS):
            raise shape_error("einsum", f"invalid subscripts {subscripts!r}: use letters, "
                              f"',', '->' and '...'")
    used = set(subscripts)
    spare = [letter for letter in _LETTERS if letter not in used]
    broadcast_ndim = 0
    for term, operand in zip(terms, operands, strict=True):
        if "..." in term:
            broadcast_ndim = max(broadcast_ndim, operand.ndim - len(term) + 3)
    ellipsis = "".join(spare[:broadcast_ndim])
    expanded = []
    for term, operand in zip(terms, operands, strict=True):
        if "..." in term:
            count = operand.ndim - len(term) + 3
            term = term.replace("...", ellipsis[broadcast_ndim - count:] if count > 0 else "")
        if len(term) != operand.ndim:
            raise shape_error("einsum", f"subscripts {term!r} do not match an operand of "
                              f"shape {operand.shape}", *operands)
        expanded.append(term)
    if output is None:
        counts = {}
        for letter in "".join(expanded):
            counts[letter] = counts.get(letter, 0) + 1
        output = ellipsis + "".join(sorted(letter for letter, count in counts.items()
                                           if count == 1 and letter not in ellipsis))
    else:
        output = output.replace("...", ellipsis)
    if len(set(output)) != len(output) or not set(output) <= set("".join(expanded)):
        raise shape_error("einsum", f"output subscripts {output!r} must be distinct letters "
                          f"that appear in the inputs")
    return expanded, output


def _letter_sizes(terms, operands) -> dict:
    sizes = {}
    for term, operand in zip(terms, operands, strict=True):
        for letter, size in zip(term, operand.shape, strict=True):
            known = sizes.get(letter, 1)
            if size != known and 1 not in (size, known):
                shapes = ", ".join(str(o.shape) for o in operands)
                raise shape_error("einsum", f"subscript {letter!r} has sizes {known} and "
                                  f"{size} in operands of shapes {shapes}", *operands)
            sizes[letter] = max(size, known) if 0 not in (size, known) else 0
    return sizes


def einsum(subscripts: str, /, *operands) -> Tensor:
    """Einstein summation over the operands' axes named by `subscripts`.

    Supports explicit ('ij,jk->ik') and implicit ('ij,jk') outputs, repeated letters
    (diagonals, 'ii->i'), and '...' for broadcast axes. Differentiable in every operand.

    >>> import ember
    >>> from ember import linalg
    >>> a, b = ember.ones((2, 3)), ember.ones((3, 4))
    >>> linalg.einsum('ij,jk->ik', a, b).shape
    (2, 4)
    >>> linalg.einsum('ii', ember.eye(3))
    tensor(3.)
    """
    tensors = [o if isinstance(o, Tensor) else as_tensor(o) for o in operands]
    if not tensors:
        raise shape_error("einsum", "needs at least one operand")
    target = dtypes.result_type(*tensors)
    tensors = [cast(t, target) for t in tensors]
    terms, output = _normalize(subscripts, tensors)
    sizes = _letter_sizes(terms, tensors)
    for position, (term, tensor) in enumerate(zip(terms, tensors, strict=True)):
        shape = tuple(sizes[letter] for letter in term)
        if shape != tensor.shape:
            tensors[position] = movement.broadcast_to(tensor, shape)
    return apply(EINSUM, *tensors, subscripts=",".join(terms) + "->" + output)
