"""`Model`: an `nn.Module` that also trains itself, Keras-style (`compile`, `fit`, `evaluate`,
`predict`, `summary`), and `Sequential`, a Model made of layers applied in order.

A Model is a Module first: subclass it and write `forward` as usual, or build a `Sequential`.
`fit` is a thin loop (ember/train/loop.py) over `train_step(batch) -> logs`; override
`train_step` (and `test_step`) for training that one loss and one optimizer do not describe,
e.g. a GAN with two optimizers. Strings name optimizers, losses and metrics.
"""
from __future__ import annotations

import functools

from ember._core.autograd import no_grad
from ember._core.device import CPU
from ember._core.errors import EmberError
from ember._core.tensor import Tensor
from ember.nn import functional as F
from ember.nn.module import Module
from ember.optim import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop
from ember.train import loop
from ember.train import metrics as metrics_module
from ember.train._jit_step import check_traceable, compiled_train_step
from ember.train._summary import summary_lines

# Keras's default learning rates for the optimizers it names (PyTorch's SGD/RMSprop/Adagrad
# defaults differ; a Keras recipe ported by name should train the same).
_OPTIMIZERS = {"adam": (Adam, {}), "adamw": (AdamW, {}), "sgd": (SGD, {"lr": 0.01}),
               "rmsprop": (RMSprop, {"lr": 1e-3}), "adagrad": (Adagrad, {"lr": 1e-3})}

# name -> (function, reshape an (n,) target to an (n, 1) output, logits-style scores)
_LOSSES = {
    "cross_entropy": (F.cross_entropy, False),
    "sparse_categorical_crossentropy": (F.cross_entropy, False),
    "categorical_crossentropy": (F.cross_entropy, False),
    "binary_crossentropy": (F.binary_cross_entropy, True),
    "bce_with_logits": (F.binary_cross_entropy_with_logits, True),
    "binary_crossentropy_with_logits": (F.binary_cross_entropy_with_logits, True),
    "mse": (F.mse_loss, True), "mean_squared_error": (F.mse_loss, True),
    "mae": (F.l1_loss, True), "mean_absolute_error": (F.l1_loss, True),
    "huber": (F.huber_loss, True),
}


class _NamedLoss:
    """A loss given by name: (y_pred, y, sample_weight) -> scalar Tensor."""

    def __init__(self, name: str):
        self.name = name
        self.fn, self.match_shape = _LOSSES[name]

    def __call__(self, y_pred, y, sample_weight=None):
        if self.match_shape and y.shape != y_pred.shape and y.size == y_pred.size:
            y = y.reshape(y_pred.shape)  # Keras accepts (n,) targets for an (n, 1) output
        if self.name == "categorical_crossentropy" and y.shape == y_pred.shape:
            y = y.astype(y_pred.dtype)  # one-hot rows, possibly integer
        if sample_weight is None:
            return self.fn(y_pred, y)
        return _weighted(self.fn(y_pred, y, reduction="none"), sample_weight)

    def __repr__(self):
        return repr(self.name)


def _weighted(per_element: Tensor, sample_weight: Tensor) -> Tensor:
    """Keras's 'sum over batch size': mean over the batch of weight * per-sample loss."""
    per_sample = per_element.reshape((per_element.shape[0], -1)).mean(axis=1) \
        if per_element.ndim > 1 else per_element
    return (per_sample * sample_weight.reshape(per_sample.shape).astype(per_sample.dtype)).mean()


def _resolve_loss(loss):
    if loss is None or isinstance(loss, _NamedLoss):
        return loss
    if isinstance(loss, str):
        if loss.lower() not in _LOSSES:
            raise EmberError(f"unknown loss {loss!r}; expected one of {sorted(_LOSSES)}, a "
                             f"loss Module or a function loss(y_pred, y)")
        return _NamedLoss(loss.lower())
    if isinstance(loss, (list, tuple)):
        return [_resolve_loss(part) for part in loss]
    if callable(loss):
        return loss
    raise EmberError(f"loss must be a name, a Module or a function, got {type(loss).__name__}")


def _apply_loss(loss, y_pred, y, sample_weight):
    if isinstance(loss, _NamedLoss):
        return loss(y_pred, y, sample_weight)
    if sample_weight is None:
        return loss(y_pred, y)
    if isinstance(loss, Module) and hasattr(loss, "reduction"):
        reduction, loss.reduction = loss.reduction, "none"
        try:
            return _weighted(loss(y_pred, y), sample_weight)
        finally:
            loss.reduction = reduction
    raise EmberError("class_weight/sample_weight need a loss given by name or a loss Module "
                     "with a `reduction` option (a plain function's reduction is unknown)")


def _shape_of(shape):
    if shape is None:
        return None
    if len(shape) and isinstance(shape[0], (tuple, list)):
        return tuple(tuple(part) for part in shape)
    return tuple(shape)


class Model(Module):
    """A Module with Keras's training API.

    >>> import numpy as np, ember
    >>> from ember.models import Model
    >>> class Net(Model):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc = ember.nn.Linear(2, 1)
    ...     def forward(self, x):
    ...         return self.fc(x)
    >>> net = Net()
    >>> net.compile(optimizer='sgd', loss='mse')
    >>> x = np.ones((8, 2), np.float32)
    >>> history = net.fit(x, np.zeros((8, 1), np.float32), epochs=2, verbose=0)
    >>> len(history.history['loss'])
    2

    The functional form: call layers on `Input` symbols, then name the inputs and outputs
    (single symbols, lists or dicts of them; see ember/_functional.py). The layers become
    submodules; a layer called twice shares its parameters.

    >>> from ember._functional import Input
    >>> x = Input((4,))
    >>> y = ember.nn.Linear(3, 1)(ember.nn.ReLU()(ember.nn.Linear(4, 3)(x)))
    >>> model = Model(inputs=x, outputs=y)
    >>> list(model.state_dict())
    ['linear.weight', 'linear.bias', 'linear_1.weight', 'linear_1.bias']
    >>> model(ember.ones((2, 4))).shape
    (2, 1)
    """

    def __init__(self, inputs=None, outputs=None, *, input_shape=None, name: str | None = None):
        super().__init__()
        self.name = name or type(self).__name__
        self.input_shape = _shape_of(input_shape)
        self._graph = None
        if inputs is not None or outputs is not None:
            if inputs is None or outputs is None:
                raise EmberError("Model(inputs=..., outputs=...) needs both the inputs and "
                                 "the outputs")
            from ember._functional import FunctionalGraph

            self._graph = FunctionalGraph(inputs, outputs, self.name)
            for layer_name, layer in self._graph.layers.items():
                self.add_module(layer_name, layer)
            self.input_shape = self.input_shape or self._graph.input_shape
        self.optimizer = None
        self.loss = None
        self.loss_weights = None
        self.jit_compile = False
        self.stop_training = False
        self.history = None
        self._optimizer_factory = None
        self._compiled_metrics: list = []
        self._loss_tracker = None

    def forward(self, *args, **kwargs):
        """A functional Model replays its graph; a subclass defines its own forward."""
        if self._graph is None:
            return super().forward(*args, **kwargs)
        return self._graph(args, kwargs)

    # ---- configuration -------------------------------------------------------------------
    def compile(self, optimizer="adam", loss=None, metrics=None, loss_weights=None,
                jit: bool = False):
        """Choose the optimizer ('adam', 'adamw', 'sgd', 'rmsprop', 'adagrad', an
        `ember.optim.Optimizer`, or a factory `params -> Optimizer` such as
        `functools.partial(ember.optim.SGD, lr=0.1)`), the loss (a name, a loss Module or a
        function `loss(y_pred, y)`, PyTorch's argument order; a list for several outputs,
        weighted by `loss_weights`) and metrics (names, Metric objects or functions).

        Named losses take what ember models emit: 'cross_entropy' (also
        'sparse_categorical_crossentropy') takes logits and class indices,
        'categorical_crossentropy' logits and one-hot rows, 'binary_crossentropy'
        probabilities, 'bce_with_logits' logits. 'accuracy' follows the loss (thresholding
        binary outputs at 0.5, or at 0 for logits). An optimizer given by name is created on
        the first `fit`, after lazy layers have seen a batch. `jit=True` runs the default
        `train_step` as one `ember.jit` graph (SGD, Adam or AdamW; see train/_jit_step.py).
        """
        self._optimizer_factory = None
        if isinstance(optimizer, str):
            key = optimizer.lower()
            if key not in _OPTIMIZERS:
                raise EmberError(f"unknown optimizer {optimizer!r}; expected one of "
                                 f"{sorted(_OPTIMIZERS)} or an ember.optim.Optimizer")
            cls, options = _OPTIMIZERS[key]
            self._optimizer_factory, optimizer = functools.partial(cls, **options), None
        elif optimizer is not None and not isinstance(optimizer, Optimizer):
            if not callable(optimizer):
                raise EmberError(f"optimizer must be a name, an Optimizer or a factory, got "
                                 f"{type(optimizer).__name__}")
            self._optimizer_factory, optimizer = optimizer, None
        if jit:
            chosen = type(optimizer) if optimizer is not None else getattr(
                self._optimizer_factory, "func", None)
            if isinstance(chosen, type):
                check_traceable(chosen, self.name)
        self.__dict__.pop("_jit_steps", None)  # traced with the previous optimizer and loss
        self.optimizer = optimizer
        # Not registered as a submodule: a loss Module is configuration, kept out of the
        # state dict and of Sequential's forward.
        object.__setattr__(self, "loss", _resolve_loss(loss))
        self.loss_weights = loss_weights
        self.jit_compile = bool(jit)
        self._loss_tracker = metrics_module.Mean("loss") if loss is not None else None
        self._compiled_metrics = [self._resolve_metric(m) for m in (metrics or [])]

    def _resolve_metric(self, identifier):
        metric = metrics_module.get(identifier)
        loss_name = getattr(self.loss, "name", None)
        if isinstance(identifier, str) and loss_name in ("binary_crossentropy",
                                                           "bce_with_logits"):
            if type(metric) is metrics_module.Accuracy:
                metric = metrics_module.BinaryAccuracy(name=identifier)
            if loss_name == "bce_with_logits" and hasattr(metric, "threshold"):
                metric.threshold = 0.0  # sigmoid(0) = 0.5
        return metric

    @property
    def metrics(self) -> list:
        """The loss tracker, the compiled metrics, then any Metric held as an attribute (the
        trackers of a custom train_step): all reset at the start of each epoch."""
        tracked = ([self._loss_tracker] if self._loss_tracker is not None else []) + \
            list(self._compiled_metrics)
        tracked += [value for value in vars(self).values()
                    if isinstance(value, metrics_module.Metric) and value not in tracked]
        return tracked

    def reset_metrics(self):
        for metric in self.metrics:
            metric.reset_state()

    # ---- steps (override these) ----------------------------------------------------------
    def train_step(self, batch) -> dict:
        """One optimization step on `batch = (x, y, sample_weight)`; returns the logs: the
        running loss and metrics of the epoch so far."""
        if self.jit_compile:
            return compiled_train_step(self, batch)
        x, y, sample_weight = batch
        y_pred = self._call(x)
        loss = self.compute_loss(x, y, y_pred, sample_weight)
        optimizer = self._live_optimizer()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return self.compute_metrics(x, y, y_pred, sample_weight, loss)

    def test_step(self, batch) -> dict:
        """Loss and metrics on one batch (run in eval mode under no_grad)."""
        x, y, sample_weight = batch
        y_pred = self._call(x)
        loss = self.compute_loss(x, y, y_pred, sample_weight) if self.loss is not None else None
        return self.compute_metrics(x, y, y_pred, sample_weight, loss)

    def predict_step(self, batch):
        """The model's output for one batch."""
        return self._call(batch[0])

    def compute_loss(self, x, y, y_pred, sample_weight=None) -> Tensor:
        """The compiled loss (summed over outputs with `loss_weights`)."""
        if self.loss is None:
            raise EmberError(f"{self.name}: no loss; call compile(loss=...) first, or "
                             f"override train_step")
        if y is None:
            raise EmberError(f"{self.name}: the loss needs targets y")
        if not isinstance(y_pred, (tuple, list)):
            return _apply_loss(self.loss, y_pred, y, sample_weight)
        losses = self.loss if isinstance(self.loss, list) else [self.loss] * len(y_pred)
        weights = self.loss_weights or [1.0] * len(y_pred)
        if not len(losses) == len(weights) == len(y_pred) == len(y):
            raise EmberError(f"{self.name}: {len(y_pred)} outputs, {len(y)} targets, "
                             f"{len(losses)} losses and {len(weights)} loss weights")
        terms = [weight * _apply_loss(loss, out, target, sample_weight)
                 for loss, weight, out, target in zip(losses, weights, y_pred, y)]
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        return total

    def compute_metrics(self, x, y, y_pred, sample_weight=None, loss=None) -> dict:
        """Update the loss tracker and compiled metrics with one batch; return every result."""
        if loss is not None and self._loss_tracker is not None:
            batch_size = (x[0] if isinstance(x, tuple) else x).shape[0]
            self._loss_tracker.update_state(float(loss.item()), sample_weight=batch_size)
        if y is not None and self._compiled_metrics:
            if isinstance(y_pred, (tuple, list)):
                raise EmberError(f"{self.name}: compiled metrics need a single-output model; "
                                 f"override compute_metrics for several outputs")
            for metric in self._compiled_metrics:
                metric.update_state(y, y_pred)
        return {metric.name: metric.result() for metric in self.metrics}

    def _call(self, x):
        return self(*x) if isinstance(x, tuple) else self(x)

    # ---- files -------------------------------------------------------------------------
    def save(self, path, metadata: dict | None = None) -> None:
        """Architecture (JSON config) and weights in one checksummed safetensors file,
        written atomically; `ember.models.load_model(path)` rebuilds the model without
        running code from the file."""
        from ember.io import save_model

        save_model(self, path, metadata)

    # ---- the loops -----------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size: int = 32, epochs: int = 1, verbose="auto",
            callbacks=None, validation_split: float = 0.0, validation_data=None,
            shuffle: bool = True, class_weight: dict | None = None, sample_weight=None,
            initial_epoch: int = 0, steps_per_epoch: int | None = None,
            validation_batch_size: int | None = None, checkpoint_dir=None,
            resume: bool = False, checkpoint_every="epoch", keep_checkpoints: int | None = 3):
        """Train for `epochs` epochs; returns a `History` (`.history['loss']`, ...).

        x/y: NumPy arrays or Tensors (x a tuple for several inputs), or x alone as an
        `ember.data.Dataset` or `DataLoader` yielding (x, y) batches. `validation_split`
        holds out the last fraction of the arrays (before shuffling); `validation_data` is
        (x, y) or a Dataset/DataLoader. `class_weight` maps class -> weight of its samples'
        loss. `shuffle` reorders arrays and Datasets each epoch (a DataLoader keeps its own
        order). Logs hold 'loss', the metrics, 'val_'-prefixed versions and 'lr' (the
        learning rate the epoch ran with).

        `checkpoint_dir` saves the full training state (weights, optimizer, RNGs, data
        position, History) there every `checkpoint_every` steps or at each epoch end
        ('epoch'), keeping the newest `keep_checkpoints`; `resume=True` continues from the
        newest intact one, mid-epoch, as if never interrupted (bit for bit on CPU).
        """
        return loop.fit(self, x, y, batch_size, epochs, verbose, callbacks, validation_split,
                        validation_data, shuffle, class_weight, sample_weight, initial_epoch,
                        steps_per_epoch, validation_batch_size, checkpoint_dir, resume,
                        checkpoint_every, keep_checkpoints)

    def evaluate(self, x=None, y=None, batch_size: int = 32, verbose="auto",
                 sample_weight=None, steps=None, callbacks=None, return_dict: bool = False):
        """The loss and metrics over the data: a number (loss only), a list in the order
        [loss, *metrics], or a dict with `return_dict=True`."""
        return loop.evaluate(self, x, y, batch_size, verbose, sample_weight, steps, callbacks,
                             return_dict)

    def predict(self, x, batch_size: int = 32, verbose=0, steps=None, callbacks=None):
        """The outputs for x in eval mode without gradients, as NumPy arrays concatenated
        along the batch axis (a tuple or dict of them for several outputs). NumPy, because
        predictions go to plotting, sklearn and files; wrap with ember.asarray to continue."""
        return loop.predict(self, x, batch_size, verbose, steps, callbacks)

    # ---- internals the loop uses ---------------------------------------------------------
    def _device(self):
        first = next(self.parameters(), None)
        return first.device if first is not None else CPU

    def _current_lr(self):
        if self.optimizer is None or not getattr(self.optimizer, "param_groups", None):
            return None
        return float(self.optimizer.param_groups[0]["lr"])

    def _has_unbuilt_layers(self) -> bool:
        """Whether a lazy layer (Linear(None, n), Conv2d(None, ...), BatchNorm(None)) has not
        seen its input yet, so some parameters do not exist."""
        return any(getattr(module, size, 0) is None for module in self.modules()
                   for size in ("in_features", "in_channels", "num_features"))

    def _prepare_fit(self, first_x):
        """Create an optimizer given by name, after one forward pass builds lazy layers
        (`first_x()` returns the first batch's x, or None when it cannot be peeked: then the
        optimizer is created in the first train_step, after its forward pass)."""
        if self.optimizer is not None and self._has_unbuilt_layers():
            raise EmberError(f"{self.name} has lazy layers without weights yet, so the "
                             f"optimizer given to compile() cannot hold them; pass the "
                             f"optimizer by name or as a factory (built after one batch), or "
                             f"call the model on a batch before creating the optimizer")
        if self.optimizer is not None or self._optimizer_factory is None:
            return
        if self._has_unbuilt_layers():
            x = first_x()
            if x is None:
                return
            modes = [(module, module.training) for module in self.modules()]
            self.eval()
            try:
                with no_grad():
                    self._call(x)
            finally:
                for module, training in modes:
                    object.__setattr__(module, "training", training)
        self._live_optimizer()

    def _live_optimizer(self) -> Optimizer:
        if self.optimizer is None and self._optimizer_factory is not None:
            self.optimizer = self._optimizer_factory(list(self.parameters()))
        if self.optimizer is None:
            raise EmberError(f"{self.name}: no optimizer; call compile(optimizer=...) first, "
                             f"or override train_step")
        return self.optimizer

    def _note_input(self, x):
        if self.input_shape is None:
            parts = x if isinstance(x, tuple) else (x,)
            shapes = tuple(tuple(part.shape[1:]) for part in parts)
            self.input_shape = shapes if isinstance(x, tuple) else shapes[0]

    # ---- display -------------------------------------------------------------------------
    def summary(self, input_shape=None, *, dtype=None, print_fn=print):
        """Print a table of the top-level layers (name and type), their output shapes (from
        a forward pass on a zero batch of `input_shape`, without the batch axis; default:
        the model's `input_shape`, given or seen by fit) and parameter counts (trainable
        and not; buffers such as running statistics are not parameters).

        >>> import ember
        >>> from ember.models import Sequential
        >>> Sequential([ember.nn.Linear(4, 3), ember.nn.ReLU()]).summary((4,))
        Model: "Sequential"
        ...
        Total params: 15 (60.00 B)
        Trainable params: 15 (60.00 B)
        Non-trainable params: 0 (0.00 B)
        """
        shape = _shape_of(input_shape) or self.input_shape
        lines = self._graph.summary_lines(self) if self._graph is not None and \
            input_shape is None else summary_lines(self, shape, dtype)
        for line in lines:
            print_fn(line)


class Sequential(Model):
    """Layers applied one after another, as a trainable Model. Children are named "0", "1",
    ... as in `ember.nn.Sequential`, so state dicts are interchangeable.

    >>> import ember
    >>> from ember.models import Sequential
    >>> model = Sequential([ember.nn.Linear(4, 8), ember.nn.ReLU()])
    >>> model.add(ember.nn.Linear(8, 2))
    >>> model(ember.ones((3, 4))).shape
    (3, 2)
    """

    def __init__(self, layers=None, *more_layers, input_shape=None, name: str | None = None):
        super().__init__(input_shape=input_shape, name=name)
        if isinstance(layers, Module):
            layers = [layers, *more_layers]
        elif more_layers:
            raise EmberError("Sequential takes a list of layers or layers as arguments")
        for layer in layers or []:
            self.add(layer)

    def add(self, layer: Module):
        """Append a layer."""
        if not isinstance(layer, Module):
            raise EmberError(f"Sequential.add expects a Module (a layer), got "
                             f"{type(layer).__name__}")
        self.add_module(str(len(self._modules)), layer)

    def pop(self) -> Module:
        """Remove and return the last layer."""
        if not self._modules:
            raise EmberError("Sequential.pop: the model has no layers")
        return self._modules.popitem()[1]

    @property
    def layers(self) -> list:
        return list(self._modules.values())

    def forward(self, x):
        for layer in self._modules.values():
            x = layer(x)
        return x

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(self.layers[index])
        return self.layers[index]


def load_model(path, device=None):
    """Rebuild a model saved with `Model.save` (see `ember.io.load_model`)."""
    from ember.io import load_model as load

    return load(path, device=device)
