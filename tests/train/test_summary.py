"""Model.summary(): layers, output shapes and parameter counts."""
from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import nn
from ember.models import Model, Sequential


def _cnn(**options):
    return Sequential([nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3),
                       nn.Flatten(), nn.Linear(144, 4)], **options)


def _summary(model, *args, **kwargs) -> list[str]:
    lines = []
    model.summary(*args, print_fn=lines.append, **kwargs)
    return lines


def test_small_cnn_counts_and_output_shapes():
    model = _cnn()
    lines = _summary(model, (1, 12, 12))
    # conv1: 8*1*3*3 + 8, conv2: 16*8*3*3 + 16, linear: 144*4 + 4
    expected = {"0 (Conv2d)": ("(None, 8, 10, 10)", 80), "2 (MaxPool2d)": ("(None, 8, 5, 5)", 0),
                "3 (Conv2d)": ("(None, 16, 3, 3)", 1168), "4 (Flatten)": ("(None, 144)", 0),
                "5 (Linear)": ("(None, 4)", 580)}
    for layer, (shape, count) in expected.items():
        row = next(line for line in lines if line.strip().startswith(layer))
        assert shape in row and row.endswith(f" {count:,}"), row
    total = sum(p.size for p in model.parameters())
    assert total == 80 + 1168 + 580
    assert f"Total params: {total:,} " in "\n".join(lines)
    assert lines[0] == 'Model: "Sequential"'


def test_frozen_parameters_are_non_trainable_and_buffers_are_not_counted():
    model = Sequential([nn.Linear(3, 5), nn.BatchNorm1d(5), nn.Linear(5, 2)], name="mlp")
    model[0].requires_grad_(False)
    text = "\n".join(_summary(model, (3,)))
    assert 'Model: "mlp"' in text
    assert "Total params: 42 " in text  # 20 + 10 (BatchNorm affine) + 12
    assert "Trainable params: 22 " in text and "Non-trainable params: 20 " in text


def test_lazy_layers_need_an_input_shape():
    model = Sequential([nn.Linear(None, 4), nn.ReLU()])
    with pytest.raises(ember.EmberError, match="input_shape"):
        model.summary()
    assert any("(None, 4)" in line for line in _summary(model, (6,)))
    given = Sequential([nn.Linear(None, 4)], input_shape=(6,))
    assert "Total params: 28 " in "\n".join(_summary(given))


def test_summary_after_fit_uses_the_input_shape_fit_saw(capsys):
    model = Sequential([nn.Linear(None, 3)])
    model.compile("sgd", "mse")
    model.fit(np.ones((4, 7), np.float32), np.zeros((4, 3), np.float32), verbose=0)
    model.summary()
    out = capsys.readouterr().out
    assert "(None, 3)" in out and "Total params: 24 " in out


def test_subclassed_model_lists_its_children_and_restores_training_mode():
    class Net(Model):
        def __init__(self):
            super().__init__(input_shape=(2,))
            self.body = nn.Sequential(nn.Linear(2, 4), nn.Dropout(0.1))
            self.head = nn.Linear(4, 1)

        def forward(self, x):
            return self.head(self.body(x))

    net = Net()
    lines = _summary(net)
    assert any(line.split()[:2] == ["body", "(Sequential)"] and line.endswith("12")
               for line in lines)
    assert net.training and net.body[1].training
