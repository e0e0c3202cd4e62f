"""scikit-learn wrappers: the estimator contract (check_estimator), pipelines, grid search."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

import ember
from ember.sklearn import EmberClassifier, EmberRegressor


def _blobs(rng, n=120):
    y = rng.integers(0, 3, n)
    X = rng.normal(size=(n, 4)) + 3 * np.eye(3, 4)[y]
    return X, y


@pytest.mark.parametrize("estimator", [EmberClassifier(epochs=30), EmberRegressor(epochs=30)],
                         ids=["classifier", "regressor"])
def test_passes_sklearn_estimator_checks(estimator):
    check_estimator(estimator)


def test_works_in_a_pipeline_and_grid_search():
    X, y = _blobs(np.random.default_rng(0))
    pipeline = make_pipeline(StandardScaler(), EmberClassifier(epochs=10, random_state=0))
    search = GridSearchCV(pipeline, {"emberclassifier__hidden_layer_sizes": [(8,), (32,)],
                                     "emberclassifier__lr": [1e-2, 3e-2]}, cv=3)
    search.fit(X, y)
    assert search.best_score_ > 0.9
    assert set(search.best_params_) == {"emberclassifier__hidden_layer_sizes",
                                        "emberclassifier__lr"}


def test_predict_proba_labels_and_pickle_round_trip():
    X, y = _blobs(np.random.default_rng(1))
    labels = np.array(["a", "b", "c"])[y]
    model = EmberClassifier(epochs=20, random_state=0).fit(X, labels)
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert set(model.predict(X)) <= {"a", "b", "c"} and model.score(X, labels) > 0.9
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict_proba(X), proba)


def test_custom_model_builder_and_clear_errors():
    def build(n_features, n_outputs):
        return ember.nn.Sequential(ember.nn.Linear(n_features, 16), ember.nn.Tanh(),
                                   ember.nn.Linear(16, n_outputs))

    X = np.linspace(-1, 1, 60)[:, None]
    model = EmberRegressor(model=build, epochs=200, random_state=0).fit(X, np.sin(3 * X[:, 0]))
    assert model.score(X, np.sin(3 * X[:, 0])) > 0.8
    with pytest.raises(ember.EmberError, match="build\\(n_features, n_outputs\\)"):
        EmberRegressor(model=ember.nn.Linear(1, 1)).fit(X, X[:, 0])
