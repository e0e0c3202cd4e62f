"""Recurrent layers beyond the layer table: masks, lengths, initial states, dropout, errors."""
from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.autograd import gradcheck
from tests.nn.table_rnn import np_recurrent, torch_packed

try:
    import torch
except ImportError:
    torch = None

MODES = {"lstm": ember.nn.LSTM, "gru": ember.nn.GRU, "rnn": ember.nn.RNN}


def _params(module) -> dict:
    return {name: t.numpy().astype(np.float64) for name, t in module.state_dict().items()}


def _build(mode, *args, dtype=ember.float64, **kwargs):
    ember.manual_seed(0)
    return MODES[mode](*args, dtype=dtype, **kwargs)


def _reference_mode(mode):
    return "rnn_tanh" if mode == "rnn" else mode


def _as_list(result):
    output, state = result
    return [output, *state] if isinstance(state, tuple) else [output, state]


@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_mask_equals_lengths_and_the_reference(mode, batch_first):
    module = _build(mode, 3, 4, num_layers=2, bidirectional=True, batch_first=batch_first)
    rng = np.random.default_rng(0)
    lengths = [5, 1, 3]
    x = rng.standard_normal((3, 5, 3) if batch_first else (5, 3, 3))
    valid = np.arange(5)[None, :] < np.asarray(lengths)[:, None]  # (N, T)
    mask = ember.asarray(valid if batch_first else valid.T)
    by_lengths = _as_list(module(ember.asarray(x), lengths=lengths))
    by_mask = _as_list(module(ember.asarray(x), mask=mask))
    by_tensor = _as_list(module(ember.asarray(x), lengths=ember.tensor(lengths)))
    expected = np_recurrent(_reference_mode(mode), _params(module), x, layers=2,
                            bidirectional=True, batch_first=batch_first, lengths=lengths)
    for a, b, c, ref in zip(by_lengths, by_mask, by_tensor, expected):
        np.testing.assert_allclose(a.numpy(), ref, rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        np.testing.assert_array_equal(a.numpy(), c.numpy())


@pytest.mark.torch_reference
@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_lengths_match_torch_pack_padded_sequence_with_initial_state(mode):
    module = _build(mode, 3, 4, num_layers=2, bidirectional=True, batch_first=True)
    reference = getattr(torch.nn, mode.upper())(3, 4, num_layers=2, bidirectional=True,
                                                batch_first=True).double()
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in _params(module).items()})
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 6, 3))
    h0 = rng.standard_normal((4, 3, 4))
    c0 = rng.standard_normal((4, 3, 4))
    lengths = [2, 6, 4]
    hx = (ember.asarray(h0), ember.asarray(c0)) if mode == "lstm" else ember.asarray(h0)
    torch_hx = (torch.from_numpy(h0), torch.from_numpy(c0)) if mode == "lstm" else \
        torch.from_numpy(h0)
    got = _as_list(module(ember.asarray(x), hx, lengths=lengths))
    pack = torch.nn.utils.rnn.pack_padded_sequence(torch.from_numpy(x), lengths,
                                                   batch_first=True, enforce_sorted=False)
    with torch.no_grad():
        output, state = reference(pack, torch_hx)
    output = torch.nn.utils.rnn.pad_packed_sequence(output, batch_first=True)[0]
    expected = [output, *state] if mode == "lstm" else [output, state]
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12)
    # the layer table's torch_packed helper agrees too (zero initial state)
    with torch.no_grad():
        packed_output = torch_packed(reference, torch.from_numpy(x), lengths, True)[0]
    np.testing.assert_allclose(packed_output.numpy(),
                               module(ember.asarray(x), lengths=lengths)[0].numpy(),
                               rtol=1e-10, atol=1e-12)


def test_padding_neither_leaks_into_results_nor_gets_gradient():
    module = _build("lstm", 2, 3, bidirectional=True)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 2, 2))
    noisy = x.copy()
    noisy[2:, 1] = 100.0  # sequence 1 has 2 valid steps
    clean_out, (clean_h, clean_c) = module(ember.asarray(x), lengths=[4, 2])
    x_noisy = ember.asarray(noisy).requires_grad_()
    out, (h, c) = module(x_noisy, lengths=[4, 2])
    for a, b in ((clean_out, out), (clean_h, h), (clean_c, c)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert np.all(out.numpy()[2:, 1] == 0)
    (out.sum() + h.sum() + c.sum()).backward()
    assert np.all(x_noisy.grad.numpy()[2:, 1] == 0)
    assert np.all(x_noisy.grad.numpy()[:2, 1] != 0)


def test_forward_final_state_is_output_at_last_valid_step():
    module = _build("gru", 2, 3)
    x = ember.asarray(np.random.default_rng(3).standard_normal((5, 3, 2)))
    out, h_n = module(x, lengths=[5, 2, 4])
    for n, length in enumerate([5, 2, 4]):
        np.testing.assert_array_equal(h_n.numpy()[0, n], out.numpy()[length - 1, n])


def test_zero_length_sequence_keeps_its_initial_state():
    module = _build("lstm", 2, 3)
    h0, c0 = ember.ones((1, 2, 3), dtype=ember.float64), ember.full((1, 2, 3), 2.0,
                                                                    dtype=ember.float64)
    out, (h, c) = module(ember.ones((4, 2, 2), dtype=ember.float64), (h0, c0), lengths=[0, 4])
    np.testing.assert_array_equal(h.numpy()[0, 0], 1.0)
    np.testing.assert_array_equal(c.numpy()[0, 0], 2.0)
    assert np.all(out.numpy()[:, 0] == 0)


def test_gradcheck_through_mask_and_initial_states():
    module = _build("lstm", 2, 2, num_layers=2, bidirectional=True, batch_first=True)
    rng = np.random.default_rng(4)
    x = ember.asarray(rng.standard_normal((2, 3, 2))).requires_grad_()
    h0 = ember.asarray(rng.standard_normal((4, 2, 2))).requires_grad_()
    c0 = ember.asarray(rng.standard_normal((4, 2, 2))).requires_grad_()
    mask = ember.asarray(np.array([[True, True, False], [True, True, True]]))

    def run(x, h0, c0):
        out, (h, c) = module(x, (h0, c0), mask=mask)
        return out, h, c

    assert gradcheck(run, [x, h0, c0])


def test_second_order_gradient_through_lstm_layer():
    module = _build("lstm", 2, 2)
    x = ember.asarray(np.random.default_rng(5).standard_normal((3, 1, 2))).requires_grad_()

    def grad_of_sum(x):
        x = x if x.requires_grad else x.detach().requires_grad_(True)  # numeric probes
        out, _ = module(x)
        (gx,) = ember.autograd.grad((out * out).sum(), x, create_graph=True)
        return gx

    assert gradcheck(grad_of_sum, [x])


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_fused_backward_equals_the_differentiable_backward(mode):
    # loss.backward() takes the fused gradient kernel; create_graph=True rebuilds the same
    # gradient from elementary ops. Both must agree.
    module = _build(mode, 3, 4, num_layers=2, bidirectional=True)
    x = ember.asarray(np.random.default_rng(7).standard_normal((5, 2, 3))).requires_grad_()
    params = list(module.parameters())
    grads = []
    for create_graph in (False, True):
        output, _ = module(x, lengths=[5, 3])
        loss = (output * output).sum()
        grads.append(ember.autograd.grad(loss, [x, *params], create_graph=create_graph))
    for fused, composite in zip(*grads):
        np.testing.assert_allclose(fused.numpy(), composite.numpy(), rtol=1e-12, atol=1e-14)


def test_unbatched_input_equals_a_batch_of_one():
    module = _build("lstm", 3, 4, num_layers=2, bidirectional=True)
    x = np.random.default_rng(6).standard_normal((5, 3))
    out, (h, c) = module(ember.asarray(x))
    batch_out, (batch_h, batch_c) = module(ember.asarray(x[:, None]))
    assert out.shape == (5, 8) and h.shape == (4, 4)
    np.testing.assert_allclose(out.numpy(), batch_out.numpy()[:, 0])
    np.testing.assert_allclose(c.numpy(), batch_c.numpy()[:, 0])


def test_dropout_acts_between_layers_in_training_only():
    module = _build("gru", 3, 8, num_layers=2, dropout=0.5, dtype=ember.float32)
    x = ember.ones((4, 2, 3))
    ember.manual_seed(1)
    first = module(x)[0].numpy()
    ember.manual_seed(1)
    repeated = module(x)[0].numpy()
    second = module(x)[0].numpy()
    np.testing.assert_array_equal(first, repeated)  # seeded: reproducible
    assert not np.allclose(first, second)
    module.eval()
    np.testing.assert_array_equal(module(x)[0].numpy(), module(x)[0].numpy())
    single = MODES["gru"](3, 8, num_layers=1)
    with pytest.warns(UserWarning, match="no effect"):
        MODES["gru"](3, 8, num_layers=1, dropout=0.5)
    assert single(x)[0].shape == (4, 2, 8)


def test_default_init_is_uniform_in_pytorch_bounds():
    ember.manual_seed(0)
    module = ember.nn.LSTM(5, 16, num_layers=2, bidirectional=True)
    for name, param in module.named_parameters():
        values = param.numpy()
        assert np.abs(values).max() <= 0.25, name  # 1 / sqrt(16)
        assert values.std() > 0.1, name


@pytest.mark.parametrize("make_call, error, message", [
    (lambda m: m(ember.ones((5, 2, 4))), ember.ShapeError, "input_size=3"),
    (lambda m: m(ember.ones((5, 3))[0]), ember.ShapeError, r"\(T, N, input_size\)"),
    (lambda m: m(ember.ones((5, 2, 3)), (ember.zeros((1, 2, 4)), ember.zeros((2, 2, 4)))),
     ember.ShapeError, r"\(2, 2, 4\)"),
    (lambda m: m(ember.ones((5, 2, 3)), ember.zeros((2, 2, 4))), ember.EmberError, "pair"),
    (lambda m: m(ember.ones((5, 2, 3), dtype=ember.float64)), ember.DTypeError, "float64"),
    (lambda m: m(ember.ones((5, 2, 3)), lengths=[5, 6]), ember.EmberError, r"\[0, 5\]"),
    (lambda m: m(ember.ones((5, 2, 3)), lengths=[5]), ember.ShapeError, "2 integers"),
    (lambda m: m(ember.ones((5, 2, 3)), lengths=[5, 2], mask=ember.ones((5, 2)) > 0),
     ember.EmberError, "not both"),
    (lambda m: m(ember.ones((5, 2, 3)), mask=ember.ones((2, 5)) > 0), ember.ShapeError,
     r"\(5, 2\)"),
    (lambda m: m(ember.ones((5, 2, 3)),
                 mask=ember.asarray(np.array([[1, 0, 1, 1, 1]] * 2, bool).T)),
     ember.EmberError, "prefix"),
])
def test_bad_calls_raise_clear_errors(make_call, error, message):
    module = ember.nn.LSTM(3, 4, num_layers=2)
    with pytest.raises(error, match=message):
        make_call(module)


def test_bad_cell_calls_and_constructor_arguments_raise():
    cell = ember.nn.GRUCell(3, 4)
    with pytest.raises(ember.ShapeError, match=r"\(2, 4\)"):
        cell(ember.ones((2, 3)), ember.zeros((3, 4)))
    with pytest.raises(ember.ShapeError, match="input_size=3"):
        ember.nn.LSTMCell(3, 4)(ember.ones((2, 5)))
    with pytest.raises(ember.EmberError, match="pair"):
        ember.nn.LSTMCell(3, 4)(ember.ones((2, 3)), (ember.zeros((2, 4)),))
    with pytest.raises(ember.EmberError, match="nonlinearity"):
        ember.nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ember.EmberError, match="nonlinearity"):
        ember.nn.RNNCell(3, 4, nonlinearity="gelu")
    with pytest.raises(ember.EmberError, match="dropout"):
        ember.nn.LSTM(3, 4, num_layers=2, dropout=1.5)
    with pytest.raises(ember.EmberError, match="proj_size"):
        ember.nn.LSTM(3, 4, proj_size=2)
    with pytest.raises(ember.EmberError, match="hidden_size"):
        ember.nn.GRU(3, 0)


def test_all_weights_repr_and_functional_form():
    module = ember.nn.LSTM(3, 4, num_layers=2, bias=False, batch_first=True,
                           bidirectional=True)
    assert [len(group) for group in module.all_weights] == [2, 2, 2, 2]
    assert repr(module) == "LSTM(3, 4, num_layers=2, bias=False, batch_first=True, " \
                           "bidirectional=True)"
    x = ember.ones((2, 5, 3))
    out, (h, c) = ember.nn.functional.lstm(x, None, module.all_weights, batch_first=True,
                                           bidirectional=True)
    np.testing.assert_array_equal(out.numpy(), module(x)[0].numpy())
    assert repr(ember.nn.RNNCell(3, 4, nonlinearity="relu")) == \
        "RNNCell(3, 4, nonlinearity='relu')"
