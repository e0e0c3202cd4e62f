"""Recurrent layers: RNN, LSTM, GRU over sequences and their single-step cells.

Parameter names, shapes, gate order and initialization follow PyTorch, so a PyTorch state
dict loads unchanged: `weight_ih_l{k}` (G*H, in), `weight_hh_l{k}` (G*H, H), `bias_ih_l{k}`,
`bias_hh_l{k}`, with `_reverse` for the backward direction, all drawn from
U(-1/sqrt(H), 1/sqrt(H)). The math lives in `ember.nn.functional.rnn`.
"""
from __future__ import annotations

import math
import warnings

from ember._core import dtypes
from ember._core.errors import EmberError
from ember.nn import init
from ember.nn.functional.rnn import (
    gru,
    gru_cell,
    lstm,
    lstm_cell,
    rnn,
    rnn_relu_cell,
    rnn_tanh_cell,
)
from ember.nn.module import Module, Parameter
from ember.ops.creation import empty

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _check_sizes(name: str, input_size, hidden_size):
    for what, value in (("input_size", input_size), ("hidden_size", hidden_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise EmberError(f"{name}: {what} must be a positive integer, got {value!r}")


def _nonlinearity_mode(name: str, nonlinearity: str) -> str:
    if nonlinearity not in ("tanh", "relu"):
        raise EmberError(f"{name}: unknown nonlinearity {nonlinearity!r}; expected 'tanh' or "
                         f"'relu'")
    return f"RNN_{nonlinearity.upper()}"


class RNNBase(Module):
    """Shared machinery of RNN, LSTM and GRU: parameter registration and the forward call.

    `forward(input, hx=None, lengths=None, mask=None)`: `lengths` (one int per sequence) or a
    prefix `mask` (bool, laid out like the input's first two axes, True = valid step) run
    variable-length batches as PyTorch's pack_padded_sequence would.
    """

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, dtype=None, device=None):
        super().__init__()
        name = type(self).__name__
        _check_sizes(name, input_size, hidden_size)
        if not isinstance(num_layers, int) or num_layers < 1:
            raise EmberError(f"{name}: num_layers must be a positive integer, got "
                             f"{num_layers!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or \
                not 0 <= dropout <= 1:
            raise EmberError(f"{name}: dropout must be a number in [0, 1] (the probability "
                             f"of zeroing an element), got {dropout!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(f"{name}: dropout={dropout} acts between recurrent layers, so it "
                          f"has no effect with num_layers=1", stacklevel=2)
        self.mode = mode
        self.input_size, self.hidden_size = input_size, hidden_size
        self.num_layers, self.bias = num_layers, bias
        self.batch_first, self.dropout = batch_first, float(dropout)
        self.bidirectional = bidirectional
        dtype = dtypes.as_dtype(dtype) if dtype is not None else dtypes.default_float
        gate_size = _GATES[mode] * hidden_size
        directions = 2 if bidirectional else 1
        self._flat_weights_names = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * directions
            for direction in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                shapes = {"weight_ih": (gate_size, layer_input),
                          "weight_hh": (gate_size, hidden_size)}
                if bias:
                    shapes.update(bias_ih=(gate_size,), bias_hh=(gate_size,))
                for kind, shape in shapes.items():
                    param = Parameter(empty(shape, dtype=dtype, device=device))
                    setattr(self, kind + suffix, param)
                    self._flat_weights_names.append(kind + suffix)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.hidden_size)
        for param in self.parameters():
            init.uniform_(param, -bound, bound)

    @property
    def all_weights(self) -> list:
        """Parameters grouped per layer and direction, as PyTorch's `all_weights`."""
        per_group = 4 if self.bias else 2
        names = self._flat_weights_names
        return [[getattr(self, name) for name in names[start:start + per_group]]
                for start in range(0, len(names), per_group)]

    def flatten_parameters(self):
        """No-op kept for PyTorch compatibility (ember needs no contiguous weight buffer)."""

    def forward(self, input, hx=None, lengths=None, mask=None):
        # Read the parameters at call time, so functional_call and load_state_dict apply.
        weights = [tuple(group) for group in self.all_weights]
        options = dict(batch_first=self.batch_first, bidirectional=self.bidirectional,
                       dropout=self.dropout, training=self.training, lengths=lengths,
                       mask=mask)
        if self.mode == "LSTM":
            return lstm(input, hx, weights, **options)
        if self.mode == "GRU":
            return gru(input, hx, weights, **options)
        return rnn(input, hx, weights, nonlinearity=self.mode[4:].lower(), **options)

    def extra_repr(self):
        text = f"{self.input_size}, {self.hidden_size}"
        if self.mode.startswith("RNN") and self.mode != "RNN_TANH":
            text += f", nonlinearity='{self.mode[4:].lower()}'"
        for option, default in (("num_layers", 1), ("bias", True), ("batch_first", False),
                                ("dropout", 0.0), ("bidirectional", False)):
            value = getattr(self, option)
            if value != default:
                text += f", {option}={value}"
        return text


class RNN(RNNBase):
    """Elman RNN: h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) (or relu).

    Returns `(output, h_n)`: output (T, N, D*H) (batch_first: (N, T, D*H)), h_n (L*D, N, H).

    >>> import ember
    >>> rnn = ember.nn.RNN(3, 4, num_layers=2, batch_first=True)
    >>> out, h_n = rnn(ember.ones((2, 5, 3)))
    >>> out.shape, h_n.shape
    ((2, 5, 4), (2, 2, 4))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, dtype=None, device=None):
        super().__init__(_nonlinearity_mode("RNN", nonlinearity), input_size, hidden_size,
                         num_layers, bias, batch_first, dropout, bidirectional, dtype, device)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """Long short-term memory (gates i, f, g, o as in PyTorch).

    Returns `(output, (h_n, c_n))`; `hx` is `(h_0, c_0)` or None for zeros.

    >>> import ember
    >>> lstm = ember.nn.LSTM(3, 4, bidirectional=True)
    >>> out, (h_n, c_n) = lstm(ember.ones((5, 2, 3)), lengths=[5, 3])
    >>> out.shape, h_n.shape, out[4, 1].abs().sum().item()
    ((5, 2, 8), (2, 2, 4), 0.0)
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, dtype=None, device=None):
        if proj_size:
            raise EmberError("LSTM: proj_size (projected hidden states) is not supported; "
                             "use proj_size=0 and add a Linear layer on the output")
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, dtype, device)


class GRU(RNNBase):
    """Gated recurrent unit (gates r, z, n as in PyTorch). Returns `(output, h_n)`.

    >>> import ember
    >>> gru = ember.nn.GRU(3, 4, num_layers=2)
    >>> [name for name, _ in gru.named_parameters()][:4]
    ['weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0']
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, dtype=None, device=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, dtype, device)


# ---- cells --------------------------------------------------------------------------------
class RNNCellBase(Module):
    """One recurrent step: parameters weight_ih (G*H, in), weight_hh (G*H, H), biases."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool, gates: int,
                 dtype=None, device=None):
        super().__init__()
        _check_sizes(type(self).__name__, input_size, hidden_size)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        dtype = dtypes.as_dtype(dtype) if dtype is not None else dtypes.default_float
        self.weight_ih = Parameter(empty((gates * hidden_size, input_size), dtype=dtype,
                                         device=device))
        self.weight_hh = Parameter(empty((gates * hidden_size, hidden_size), dtype=dtype,
                                         device=device))
        for name in ("bias_ih", "bias_hh"):
            self.register_parameter(name, Parameter(empty(gates * hidden_size, dtype=dtype,
                                                          device=device)) if bias else None)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.hidden_size)
        for param in self.parameters():
            init.uniform_(param, -bound, bound)

    def _weights(self) -> tuple:
        return self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh

    def extra_repr(self):
        text = f"{self.input_size}, {self.hidden_size}"
        return text if self.bias else text + ", bias=False"


class RNNCell(RNNCellBase):
    """h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) (or relu); `hx=None` means zeros.

    >>> import ember
    >>> cell = ember.nn.RNNCell(3, 4, nonlinearity='relu')
    >>> cell(ember.ones((2, 3))).shape, cell(ember.ones(3)).shape
    ((2, 4), (4,))
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", dtype=None, device=None):
        _nonlinearity_mode("RNNCell", nonlinearity)
        super().__init__(input_size, hidden_size, bias, 1, dtype, device)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        step = rnn_tanh_cell if self.nonlinearity == "tanh" else rnn_relu_cell
        return step(input, hx, *self._weights())

    def extra_repr(self):
        text = super().extra_repr()
        return text if self.nonlinearity == "tanh" else text + ", nonlinearity='relu'"


class LSTMCell(RNNCellBase):
    """One LSTM step: `(h', c')` from `hx = (h, c)` (None: zeros).

    >>> import ember
    >>> h, c = ember.nn.LSTMCell(3, 4)(ember.ones((2, 3)))
    >>> h.shape, c.shape
    ((2, 4), (2, 4))
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, dtype=None,
                 device=None):
        super().__init__(input_size, hidden_size, bias, 4, dtype, device)

    def forward(self, input, hx=None):
        return lstm_cell(input, hx, *self._weights())


class GRUCell(RNNCellBase):
    """One GRU step: the new h from input and `hx` (None: zeros).

    >>> import ember
    >>> ember.nn.GRUCell(3, 4)(ember.ones((2, 3))).shape
    (2, 4)
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, dtype=None,
                 device=None):
        super().__init__(input_size, hidden_size, bias, 3, dtype, device)

    def forward(self, input, hx=None):
        return gru_cell(input, hx, *self._weights())
