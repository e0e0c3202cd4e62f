"""Layer-table rows for the recurrent layers and cells (ember/nn/layers/rnn.py).

The NumPy reference below runs every sequence on its own in a plain loop over its valid
steps (forward, then reversed for the backward direction), which is what PyTorch's
pack_padded_sequence computes; it shares no code with the implementation.
"""
from __future__ import annotations

import numpy as np

import ember
from tests.nn.layertable import LayerSpec

try:
    import torch
except ImportError:
    torch = None

GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}
INPUT, HIDDEN, STEPS, BATCH = 3, 2, 4, 2


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def np_step(mode, x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    """One step of `mode` for one input row (or a batch of rows); returns (h, c)."""
    from_input = x @ w_ih.T + (0 if b_ih is None else b_ih)
    from_hidden = h @ w_hh.T + (0 if b_hh is None else b_hh)
    if mode == "lstm":
        i, f, g, o = np.split(from_input + from_hidden, 4, axis=-1)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        return _sigmoid(o) * np.tanh(c), c
    if mode == "gru":
        x_r, x_z, x_n = np.split(from_input, 3, axis=-1)
        h_r, h_z, h_n = np.split(from_hidden, 3, axis=-1)
        r, z = _sigmoid(x_r + h_r), _sigmoid(x_z + h_z)
        n = np.tanh(x_n + r * h_n)
        return (1 - z) * n + z * h, c
    pre_activation = from_input + from_hidden
    return (np.tanh(pre_activation) if mode == "rnn_tanh" else np.maximum(pre_activation, 0)), c


def np_recurrent(mode, p, x, h0=None, c0=None, *, layers=1, bidirectional=False,
                 batch_first=False, lengths=None):
    """Reference multi-layer run: returns [output, h_n] (+ c_n for the LSTM)."""
    unbatched = x.ndim == 2
    if unbatched:
        x = x[:, None]
        h0 = None if h0 is None else h0[:, None]
        c0 = None if c0 is None else c0[:, None]
    elif batch_first:
        x = x.transpose(1, 0, 2)
    steps, batch = x.shape[:2]
    hidden = p["weight_hh_l0"].shape[1]
    lengths = np.full(batch, steps) if lengths is None else np.asarray(lengths)
    directions = 2 if bidirectional else 1
    h_n = np.zeros((layers * directions, batch, hidden))
    c_n = np.zeros_like(h_n)
    layer_input = x
    for layer in range(layers):
        outputs = []
        for direction in range(directions):
            suffix = f"_l{layer}" + ("_reverse" if direction else "")
            weights = [p.get(f"{kind}{suffix}") for kind in
                       ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            k = layer * directions + direction
            out = np.zeros((steps, batch, hidden))
            for n in range(batch):
                h = np.zeros(hidden) if h0 is None else h0[k, n]
                c = np.zeros(hidden) if c0 is None else c0[k, n]
                order = range(lengths[n]) if direction == 0 else reversed(range(lengths[n]))
                for t in order:
                    h, c = np_step(mode, layer_input[t, n], h, c, *weights)
                    out[t, n] = h
                h_n[k, n], c_n[k, n] = h, c
            outputs.append(out)
        layer_input = np.concatenate(outputs, axis=-1)
    output = layer_input[:, 0] if unbatched else (
        layer_input.transpose(1, 0, 2) if batch_first else layer_input)
    if unbatched:
        h_n, c_n = h_n[:, 0], c_n[:, 0]
    return [output, h_n, c_n] if mode == "lstm" else [output, h_n]


def param_shapes(mode, layers=1, bidirectional=False, bias=True, input_size=INPUT):
    gate_size = GATES[mode] * HIDDEN
    directions = 2 if bidirectional else 1
    shapes = {}
    for layer in range(layers):
        for direction in range(directions):
            suffix = f"_l{layer}" + ("_reverse" if direction else "")
            inputs = input_size if layer == 0 else HIDDEN * directions
            shapes[f"weight_ih{suffix}"] = (gate_size, inputs)
            shapes[f"weight_hh{suffix}"] = (gate_size, HIDDEN)
            if bias:
                shapes[f"bias_ih{suffix}"] = (gate_size,)
                shapes[f"bias_hh{suffix}"] = (gate_size,)
    return shapes


def _classes(mode):
    if mode == "lstm":
        return ember.nn.LSTM, (torch.nn.LSTM if torch else None), {}
    if mode == "gru":
        return ember.nn.GRU, (torch.nn.GRU if torch else None), {}
    options = {"nonlinearity": mode[4:]}
    return ember.nn.RNN, (torch.nn.RNN if torch else None), options


def torch_packed(module, x, lengths, batch_first):
    """Run a torch recurrent module on a padded batch through pack_padded_sequence."""
    pack = torch.nn.utils.rnn.pack_padded_sequence(x, list(lengths), batch_first=batch_first,
                                                   enforce_sorted=False)
    output, state = module(pack)
    output, _ = torch.nn.utils.rnn.pad_packed_sequence(output, batch_first=batch_first,
                                                       total_length=x.shape[1 if batch_first
                                                                            else 0])
    return output, state


def adapted(layer_class, adapt):
    """`layer_class` with a forward taking the table's flat inputs, `adapt(forward, *inputs)`.

    A subclass keeps PyTorch's parameter names, and every derived check (the gradient check
    included) calls the module on the flat inputs directly.
    """

    class Adapted(layer_class):
        def forward(self, *inputs):
            return adapt(super().forward, *inputs)

    Adapted.__name__ = layer_class.__name__
    return Adapted


def sequence_row(mode, name, *, layers=1, bidirectional=False, batch_first=False, bias=True,
                 initial_state=False, lengths=None, unbatched=False):
    ember_class, torch_class, extra = _classes(mode)
    options = dict(num_layers=layers, bidirectional=bidirectional, batch_first=batch_first,
                   bias=bias, **extra)
    directions = 2 if bidirectional else 1
    if unbatched:
        inputs = [(STEPS, INPUT)]
        state_shape = (layers * directions, HIDDEN)
    else:
        inputs = [(BATCH, STEPS, INPUT) if batch_first else (STEPS, BATCH, INPUT)]
        state_shape = (layers * directions, BATCH, HIDDEN)
    torch_call = None
    if initial_state:
        inputs += [state_shape] * (2 if mode == "lstm" else 1)
        if mode == "lstm":
            ember_class = adapted(ember_class, lambda forward, x, h, c: forward(x, (h, c)))

            def torch_call(m, x, h, c):
                return m(x, (h, c))
    elif lengths is not None:
        ember_class = adapted(ember_class, lambda forward, x: forward(x, lengths=lengths))

        def torch_call(m, x):
            return torch_packed(m, x, lengths, batch_first)

    def ref(p, x, *states):
        return np_recurrent(mode, p, x, *states, layers=layers, bidirectional=bidirectional,
                            batch_first=batch_first, lengths=lengths)

    return LayerSpec(f"{mode}_{name}", lambda: ember_class(INPUT, HIDDEN, **options), ref,
                     tuple(inputs), param_shapes(mode, layers, bidirectional, bias),
                     torch=(lambda: torch_class(INPUT, HIDDEN, **options)) if torch else None,
                     torch_call=torch_call)


def cell_row(mode, name, *, given_state=True, unbatched=False, bias=True):
    gate_size = GATES[mode] * HIDDEN
    if mode == "lstm":
        ember_class, torch_class, extra = ember.nn.LSTMCell, "LSTMCell", {}
    elif mode == "gru":
        ember_class, torch_class, extra = ember.nn.GRUCell, "GRUCell", {}
    else:
        ember_class, torch_class, extra = ember.nn.RNNCell, "RNNCell", {
            "nonlinearity": mode[4:]}
    batch = () if unbatched else (BATCH,)
    inputs = [batch + (INPUT,)]
    if given_state:
        inputs += [batch + (HIDDEN,)] * (2 if mode == "lstm" else 1)

    def call(forward, x, *states):
        if not states:
            return forward(x)
        return forward(x, tuple(states)) if mode == "lstm" else forward(x, states[0])

    def ref(p, x, *states):
        zero = np.zeros(batch + (HIDDEN,))
        h = states[0] if states else zero
        c = states[1] if len(states) > 1 else zero
        h, c = np_step(mode, x, h, c, p["weight_ih"], p["weight_hh"], p.get("bias_ih"),
                       p.get("bias_hh"))
        return [h, c] if mode == "lstm" else h

    shapes = {"weight_ih": (gate_size, INPUT), "weight_hh": (gate_size, HIDDEN)}
    if bias:
        shapes.update(bias_ih=(gate_size,), bias_hh=(gate_size,))
    return LayerSpec(f"{torch_class.lower()}_{mode}_{name}",
                     lambda: adapted(ember_class, call)(INPUT, HIDDEN, bias=bias, **extra), ref,
                     tuple(inputs), shapes, torch_call=lambda m, *x: call(m, *x),
                     torch=(lambda: getattr(torch.nn, torch_class)(INPUT, HIDDEN, bias=bias,
                                                                   **extra)) if torch else None)


def _rows_for(mode):
    return [
        sequence_row(mode, "one_layer"),
        sequence_row(mode, "two_layers", layers=2),
        sequence_row(mode, "bidirectional", bidirectional=True),
        sequence_row(mode, "batch_first", batch_first=True),
        sequence_row(mode, "no_bias", bias=False),
        sequence_row(mode, "initial_state", layers=2, initial_state=True),
        sequence_row(mode, "lengths_bidirectional", layers=2, bidirectional=True,
                     lengths=(4, 2)),
        sequence_row(mode, "lengths_batch_first", batch_first=True, lengths=(1, 3)),
        sequence_row(mode, "unbatched", unbatched=True),
        cell_row(mode, "state_given"),
        cell_row(mode, "zero_state_no_bias", given_state=False, bias=False),
        cell_row(mode, "unbatched", unbatched=True),
    ]


ROWS = [row for mode in ("rnn_tanh", "rnn_relu", "lstm", "gru") for row in _rows_for(mode)]
