"""scikit-learn estimators around ember models: `EmberClassifier` and `EmberRegressor`.

They follow sklearn's estimator contract (parameters stored as given in `__init__`, learned
state in attributes ending in `_`, `get_params`/`set_params`, `fit`/`predict`/`score`), so they
work in `Pipeline` and `GridSearchCV`. The network is `model`: None for an MLP with
`hidden_layer_sizes`, or a function `build(n_features, n_outputs) -> ember.nn.Module`.
Training runs through `ember.Model.fit`, the one training loop.
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

import ember
from ember import nn
from ember._core.errors import EmberError

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data
except ImportError:  # pragma: no cover - older scikit-learn
    def validate_data(estimator, X, y="no_validation", reset=True, **options):
        return estimator._validate_data(X, y, reset=reset, **options)

_OPTIMIZERS = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop",
               "adagrad": "Adagrad"}
_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "sigmoid": nn.Sigmoid}


class _EmberEstimator(BaseEstimator):
    def __init__(self, model=None, hidden_layer_sizes=(64,), activation="relu",
                 optimizer="adam", lr=1e-2, weight_decay=0.0, epochs=50, batch_size=32,
                 random_state=None, verbose=0):
        self.model = model
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.random_state = random_state
        self.verbose = verbose

    # ---- building and training -----------------------------------------------------------
    def _network(self, n_features: int, n_outputs: int) -> nn.Module:
        if self.model is not None:
            if not callable(self.model) or isinstance(self.model, nn.Module):
                raise EmberError(f"{type(self).__name__}: model must be None or a function "
                                 f"build(n_features, n_outputs) returning an ember.nn.Module "
                                 f"(a function, so every fit starts from fresh weights), got "
                                 f"{type(self.model).__name__}")
            return self.model(n_features, n_outputs)
        if self.activation not in _ACTIVATIONS:
            raise EmberError(f"{type(self).__name__}: activation must be one of "
                             f"{sorted(_ACTIVATIONS)}, got {self.activation!r}")
        layers, width = [], n_features
        for size in self.hidden_layer_sizes:
            layers += [nn.Linear(width, int(size)), _ACTIVATIONS[self.activation]()]
            width = int(size)
        return nn.Sequential(*layers, nn.Linear(width, n_outputs))

    def _train(self, X, targets, n_outputs: int, loss: str):
        if self.optimizer not in _OPTIMIZERS:
            raise EmberError(f"{type(self).__name__}: optimizer must be one of "
                             f"{sorted(_OPTIMIZERS)}, got {self.optimizer!r}")
        seed = self.random_state
        if seed is None:
            seed = int(np.random.randint(0, 2**31 - 1))
        elif isinstance(seed, np.random.RandomState):
            seed = int(seed.randint(0, 2**31 - 1))
        ember.manual_seed(int(seed))
        model = ember.Sequential([self._network(X.shape[1], n_outputs)])
        optimizer_class = getattr(ember.optim, _OPTIMIZERS[self.optimizer])
        model.compile(optimizer=optimizer_class(model.parameters(), lr=self.lr,
                                                weight_decay=self.weight_decay), loss=loss)
        history = model.fit(X, targets, batch_size=min(self.batch_size, len(X)),
                            epochs=self.epochs, verbose=self.verbose, shuffle=True)
        self.model_ = model
        self.loss_curve_ = list(history.history["loss"])
        return self

    def _outputs(self, X) -> np.ndarray:
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype=np.float32)
        return np.asarray(self.model_.predict(X, batch_size=max(len(X), 1)), np.float64)

    # ---- pickling: weights as arrays, the network rebuilt from the parameters ------------
    def __getstate__(self):
        state = dict(self.__dict__)
        model = state.pop("model_", None)
        if model is not None:
            state["_weights"] = {k: v.numpy().copy() for k, v in model.state_dict().items()}
        return state

    def __setstate__(self, state):
        weights = state.pop("_weights", None)
        self.__dict__.update(state)
        if weights is not None:
            self.model_ = ember.Sequential([self._network(self.n_features_in_,
                                                          self._n_outputs)])
            self.model_.load_state_dict(weights)


class EmberClassifier(ClassifierMixin, _EmberEstimator):
    """A neural-network classifier trained with ember (softmax + cross-entropy).

    >>> import numpy as np
    >>> from ember.sklearn import EmberClassifier
    >>> X = np.r_[np.zeros((20, 2)), np.ones((20, 2))]
    >>> y = np.r_[np.zeros(20), np.ones(20)]
    >>> EmberClassifier(epochs=20, random_state=0).fit(X, y).score(X, y)
    1.0
    """

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=np.float32)
        check_classification_targets(y)
        self.classes_, encoded = np.unique(y, return_inverse=True)
        self._n_outputs = len(self.classes_)
        return self._train(X, encoded.astype(np.int64), self._n_outputs, "cross_entropy")

    def predict_proba(self, X) -> np.ndarray:
        logits = self._outputs(X)
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        outputs = self._outputs(X)  # checks fitted first
        return self.classes_[np.argmax(outputs, axis=1)]


class EmberRegressor(RegressorMixin, _EmberEstimator):
    """A neural-network regressor trained with ember (mean squared error).

    >>> import numpy as np
    >>> from ember.sklearn import EmberRegressor
    >>> X = np.linspace(-1, 1, 40)[:, None]
    >>> model = EmberRegressor(epochs=100, random_state=0).fit(X, 2 * X[:, 0])
    >>> bool(model.score(X, 2 * X[:, 0]) > 0.95)
    True
    """

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=np.float32, y_numeric=True, multi_output=True)
        y = np.asarray(y, np.float32)
        self._single_output = y.ndim == 1
        targets = y.reshape(len(y), -1)
        self._n_outputs = targets.shape[1]
        return self._train(X, targets, self._n_outputs, "mse")

    def predict(self, X) -> np.ndarray:
        outputs = self._outputs(X)
        return outputs[:, 0] if self._single_output else outputs

    def __sklearn_tags__(self):  # several targets at once are fine (one output each)
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _more_tags(self):  # the same for scikit-learn < 1.6
        return {"multioutput": True}
