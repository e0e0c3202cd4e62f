"""Module, Parameter and containers: registration, state dicts, modes, hooks, errors."""
from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import nn
from ember.nn.module import StateDictError


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.scale = nn.Parameter(ember.ones(4))
        self.register_buffer("count", ember.zeros((), dtype=ember.int64))
        self.register_buffer("scratch", ember.zeros(2), persistent=False)

    def forward(self, x):
        return self.fc(x) * self.scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([Block(), Block()])
        self.head = nn.Sequential(nn.Linear(4, 2))

    def forward(self, x):
        for block in self.blocks:
            x = block(x)[..., :3]
        return self.head(ember.concat([x, x[..., :1]], axis=-1))


def test_registration_and_names_follow_attribute_paths():
    # PyTorch's order: a module's own parameters, then its buffers, then its children.
    net = Net()
    assert list(net.state_dict()) == [
        "blocks.0.scale", "blocks.0.count", "blocks.0.fc.weight", "blocks.0.fc.bias",
        "blocks.1.scale", "blocks.1.count", "blocks.1.fc.weight", "blocks.1.fc.bias",
        "head.0.weight", "head.0.bias"]
    assert [name for name, _ in net.named_parameters()] == [
        k for k in net.state_dict() if not k.endswith("count")]
    assert len(list(net.modules())) == 8
    assert [name for name, _ in net.named_children()] == ["blocks", "head"]
    assert "scratch" not in net.blocks[0].state_dict()
    assert [name for name, _ in net.named_buffers()] == [
        "blocks.0.count", "blocks.0.scratch", "blocks.1.count", "blocks.1.scratch"]


def test_shared_parameter_is_listed_once():
    layer = nn.Linear(2, 2)
    model = nn.Sequential(layer, layer)
    assert len(list(model.parameters())) == 2


def test_state_dict_round_trip_is_bit_exact_and_accepts_numpy():
    source, target = Net(), Net()
    saved = {k: v.numpy().copy() for k, v in source.state_dict().items()}
    target.load_state_dict(saved)
    for key, value in target.state_dict().items():
        assert value.numpy().tobytes() == saved[key].tobytes()
    x = ember.randn(5, 3)
    assert source(x).numpy().tobytes() == target(x).numpy().tobytes()


def test_load_state_dict_lists_missing_unexpected_and_wrong_shapes_and_changes_nothing():
    net = Net()
    before = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    bad = {k: v.numpy() + 1 for k, v in net.state_dict().items()}
    del bad["head.0.bias"]
    bad["head.1.weight"] = np.zeros(2)
    bad["blocks.0.fc.weight"] = np.zeros((3, 3))
    with pytest.raises(StateDictError) as info:
        net.load_state_dict(bad)
    message = str(info.value)
    assert "missing keys: head.0.bias" in message
    assert "unexpected keys: head.1.weight" in message
    assert "blocks.0.fc.weight: expected (4, 3), got (3, 3)" in message
    for key, value in net.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), before[key])


def test_non_strict_load_reports_keys_but_shape_errors_still_raise():
    net = Net()
    partial = {"head.0.bias": np.ones(2, np.float32), "extra": np.zeros(1)}
    result = net.load_state_dict(partial, strict=False)
    assert "extra" in result.unexpected_keys and "head.0.weight" in result.missing_keys
    np.testing.assert_array_equal(net.head[0].bias.numpy(), np.ones(2))
    with pytest.raises(StateDictError, match="wrong shapes"):
        net.load_state_dict({"head.0.bias": np.ones(3)}, strict=False)


def test_load_keeps_parameter_identity_and_dtype():
    layer = nn.Linear(2, 2)
    weight = layer.weight
    layer.load_state_dict({"weight": np.eye(2), "bias": np.zeros(2)})
    assert layer.weight is weight and layer.weight.dtype == ember.float32


def test_train_eval_propagate():
    net = Net()
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


def test_to_dtype_keeps_parameter_objects_and_casts_floats_only():
    net = Net()
    params = list(net.parameters())
    net.to(ember.float64)
    assert all(a is b for a, b in zip(params, net.parameters()))
    assert all(p.dtype == ember.float64 for p in net.parameters())
    assert net.blocks[0].count.dtype == ember.int64
    with pytest.raises(ember.EmberError):
        net.to(ember.int32)


def test_zero_grad_and_requires_grad():
    layer = nn.Linear(3, 1)
    layer(ember.ones((2, 3))).sum().backward()
    assert layer.weight.grad is not None
    layer.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(layer.weight.grad.numpy(), 0)
    layer.zero_grad()
    assert layer.weight.grad is None
    layer.requires_grad_(False)
    assert not layer(ember.ones((2, 3))).requires_grad


def test_apply_visits_children_before_parent():
    seen = []
    Net().apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Net" and seen.index("Block") < seen.index("ModuleList")


def test_forward_hooks_can_replace_inputs_and_outputs():
    layer = nn.Linear(2, 2)
    pre = layer.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    post = layer.register_forward_hook(lambda m, args, out: out + 1)
    np.testing.assert_allclose(layer(ember.ones((1, 2))).numpy(), layer.bias.numpy()[None] + 1)
    pre.remove()
    post.remove()
    x = ember.ones((1, 2))
    np.testing.assert_allclose(layer(x).numpy(), (x.numpy() @ layer.weight.numpy().T
                                                  + layer.bias.numpy()))


def test_error_inside_nested_module_names_the_module_path():
    net = Net()
    with pytest.raises(ember.ShapeError) as info:
        net(ember.ones((2, 5)))
    message = str(info.value)
    assert "in module blocks.0.fc (Linear)" in message
    assert "test_module.py" in message


def test_lazy_linear_infers_input_size_and_loads_state():
    layer = nn.Linear(None, 3)
    assert list(layer.state_dict()) == ["bias"]
    assert layer(ember.ones((2, 7))).shape == (2, 3)
    assert layer.weight.shape == (3, 7)
    fresh = nn.Linear(None, 3)
    fresh.load_state_dict({k: v.numpy() for k, v in layer.state_dict().items()})
    assert isinstance(fresh.weight, nn.Parameter) and fresh.weight.shape == (3, 7)


def test_assignment_errors_are_clear():
    layer = nn.Linear(2, 2)
    with pytest.raises(ember.EmberError, match="wrap it in ember.nn.Parameter"):
        layer.weight = ember.ones((2, 2))

    class Early(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(ember.ones(1))

    with pytest.raises(ember.EmberError, match="Module.__init__"):
        Early()


def test_repr_is_nested_and_readable():
    text = repr(nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.Linear(3, 1))))
    assert text == ("Sequential(\n  (0): Linear(in_features=2, out_features=3, bias=True)\n"
                    "  (1): Sequential(\n    (0): Linear(in_features=3, out_features=1, "
                    "bias=True)\n  )\n)")


def test_containers_index_slice_and_mutate():
    seq = nn.Sequential(nn.Linear(2, 2), nn.Identity(), nn.Linear(2, 1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear)
    assert list(seq[1:].state_dict()) == ["2.weight", "2.bias"]
    seq.append(nn.Identity())
    assert len(seq) == 4
    with pytest.raises(IndexError):
        seq[7]
    modules = nn.ModuleList([nn.Linear(1, 1)])
    modules.insert(0, nn.Identity())
    assert isinstance(modules[0], nn.Identity) and list(modules.state_dict()) == [
        "1.weight", "1.bias"]
    table = nn.ModuleDict({"a": nn.Linear(1, 2)})
    table["b"] = nn.Linear(2, 1)
    assert list(table) == ["a", "b"] and "b" in table
    assert list(table.state_dict()) == ["a.weight", "a.bias", "b.weight", "b.bias"]
    ordered = nn.Sequential({"enc": nn.Linear(2, 2), "dec": nn.Linear(2, 2)})
    assert list(ordered.state_dict())[0] == "enc.weight"


def test_modules_refuse_pickle():
    import pickle

    with pytest.raises(ember.EmberError, match="safetensors"):
        pickle.dumps(nn.Linear(1, 1))


def test_functional_call_does_not_change_the_module():
    layer = nn.Linear(2, 1)
    weight = ember.zeros((1, 2), requires_grad=True)
    out = nn.utils.functional_call(layer, {"weight": weight}, ember.ones((1, 2)))
    np.testing.assert_allclose(out.numpy(), layer.bias.numpy()[None])
    out.sum().backward()
    np.testing.assert_allclose(weight.grad.numpy(), [[1.0, 1.0]])
    assert layer.weight is not weight
    with pytest.raises(ember.EmberError, match="no parameter or buffer named 'nope'"):
        nn.utils.functional_call(layer, {"nope": weight}, ember.ones((1, 2)))


def test_parameter_vector_utilities_round_trip():
    net = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    vector = nn.utils.parameters_to_vector(net.parameters())
    assert vector.shape == (sum(p.size for p in net.parameters()),)
    nn.utils.vector_to_parameters(vector * 2, net.parameters())
    np.testing.assert_allclose(nn.utils.parameters_to_vector(net.parameters()).numpy(),
                               vector.numpy() * 2)
    with pytest.raises(ember.EmberError, match="1-d vector of 11"):
        nn.utils.vector_to_parameters(vector[:3], net.parameters())


def test_deepcopy_gives_an_independent_module_on_the_same_device():
    import copy

    net = Net()
    clone = copy.deepcopy(net)
    assert clone.blocks[0].fc.weight is not net.blocks[0].fc.weight
    assert isinstance(clone.blocks[0].fc.weight, nn.Parameter)
    assert clone.blocks[0].fc.weight.device is ember.device("cpu")
    x = ember.randn(2, 3)
    np.testing.assert_array_equal(clone(x).numpy(), net(x).numpy())
    clone.blocks[0].scale._data[...] = 0
    assert net.blocks[0].scale.numpy().all()


def test_linear_rejects_a_bias_that_would_only_broadcast():
    with pytest.raises(ember.ShapeError, match=r"expected a bias of shape \(4,\)"):
        nn.functional.linear(ember.ones((2, 3)), ember.ones((4, 3)), ember.ones(1))


def test_deleting_renumbers_so_append_cannot_overwrite():
    seq = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 3))
    del seq[0]
    seq.append(nn.Tanh())
    assert list(seq._modules) == ["0", "1", "2"]
    assert [type(m).__name__ for m in seq] == ["ReLU", "Linear", "Tanh"]
    del seq[0:2]
    assert [type(m).__name__ for m in seq] == ["Tanh"]
    modules = nn.ModuleList([nn.Identity(), nn.Linear(1, 1), nn.Tanh()])
    del modules[:2]
    assert list(modules._modules) == ["0"] and isinstance(modules[0], nn.Tanh)


def test_lazy_linear_reports_its_size_after_loading_and_zero_size_layers_work():
    lazy = nn.Linear(None, 3)
    lazy.load_state_dict({"weight": np.ones((3, 5)), "bias": np.zeros(3)})
    assert lazy.in_features == 5 and "in_features=5" in repr(lazy)
    assert nn.Linear(0, 3)(ember.ones((2, 0))).shape == (2, 3)
