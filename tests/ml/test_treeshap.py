"""ml.treeshap: exact TreeSHAP per tree cell equals shap's TreeExplainer and LightGBM's pred_contrib."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest
import shap

from ml import treeshap
from ml.explanation import TreeShapComputer


def _booster(x: np.ndarray, y: np.ndarray, categorical: list[int] | None = None, **params) -> lgb.Booster:
    settings = {"objective": "binary", "verbose": -1, "seed": 3, "num_threads": 1, "min_data_in_leaf": 5, **params}
    rounds = settings.pop("rounds", 40)
    dataset = lgb.Dataset(x, label=y, categorical_feature=categorical or "auto")
    return lgb.train(settings, dataset, num_boost_round=rounds)


def _shap_reference(booster: lgb.Booster, x: np.ndarray) -> tuple[np.ndarray, float]:
    explainer = shap.TreeExplainer(booster)
    values = np.asarray(explainer.shap_values(x))
    return (values[-1] if values.ndim == 3 else values), float(np.ravel(explainer.expected_value)[-1])


def _pred_contrib(booster: lgb.Booster, x: np.ndarray) -> tuple[np.ndarray, float]:
    contributions = booster.predict(x, pred_contrib=True)
    return contributions[:, :-1], float(contributions[0, -1])


@pytest.fixture(scope="module")
def continuous_data():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(3000, 8))
    x[:, 5] = rng.integers(0, 4, size=len(x))  # a small-integer column, as student records have
    y = (x[:, 0] + 0.5 * x[:, 1] * x[:, 2] - 0.3 * x[:, 5] + rng.normal(scale=0.8, size=len(x)) > 0).astype(int)
    return x, y


def test_values_and_base_equal_shap_tree_explainer_when_every_row_is_different(continuous_data):
    x, y = continuous_data
    booster = _booster(x, y, num_leaves=31)
    trees = treeshap.flatten_booster(booster)
    values = treeshap.shap_values(trees, x, n_jobs=2)
    reference, base = _shap_reference(booster, x)
    assert np.max(np.abs(values - reference)) < 1e-9
    assert abs(trees.base_value - base) < 1e-9
    assert np.allclose(values.sum(axis=1) + trees.base_value, booster.predict(x, raw_score=True), atol=1e-9)


def test_rows_sharing_cells_get_the_values_of_rows_computed_alone(continuous_data):
    x, y = continuous_data
    booster = _booster(x, y, num_leaves=15)
    trees = treeshap.flatten_booster(booster)
    repeated = np.repeat(np.round(x[:200], 1), 7, axis=0)  # many rows per cell
    together = treeshap.shap_values(trees, repeated, n_jobs=2)
    alone = np.vstack([treeshap.shap_values(trees, row[None, :], n_jobs=1) for row in repeated[::7]])
    assert np.array_equal(together[::7], alone)
    assert np.max(np.abs(together - _pred_contrib(booster, repeated)[0])) < 1e-9


def test_result_does_not_depend_on_threads_or_blocks(continuous_data, monkeypatch):
    x, y = continuous_data
    booster = _booster(x, y, num_leaves=15)
    trees = treeshap.flatten_booster(booster)
    one_thread = treeshap.shap_values(trees, x, n_jobs=1)
    monkeypatch.setattr(treeshap, "MAX_BLOCK_ROWS", 700)
    many_blocks = treeshap.shap_values(trees, x, n_jobs=2)
    assert np.array_equal(one_thread, many_blocks)


def test_leaves_beyond_the_table_budget_are_computed_directly_with_the_same_values(continuous_data, monkeypatch):
    x, y = continuous_data
    booster = _booster(x, y, num_leaves=31)
    tabled = treeshap.flatten_booster(booster)
    monkeypatch.setattr(treeshap, "LEAF_TABLE_MAX_VALUES", tabled.leaf_table.size // 2)
    half = treeshap.flatten_booster(booster)
    assert (half.leaf_table_offset < 0).any() and (half.leaf_table_offset >= 0).any()
    assert np.max(np.abs(treeshap.shap_values(half, x, 2) - treeshap.shap_values(tabled, x, 2))) < 1e-12


def test_trees_with_more_than_64_splits_are_explained_exactly(continuous_data):
    x, y = continuous_data
    booster = _booster(x, y, num_leaves=150, min_data_in_leaf=2, rounds=5, max_depth=-1)
    trees = treeshap.flatten_booster(booster)
    assert np.diff(trees.node_offset).max() > 64  # keys span more than one 64-bit word
    values = treeshap.shap_values(trees, x, n_jobs=2)
    assert np.max(np.abs(values - _shap_reference(booster, x)[0])) < 1e-9


@pytest.mark.parametrize(("params", "missing_type"), [
    ({}, "NaN"), ({"zero_as_missing": True}, "Zero"), ({"use_missing": False}, "None"),
])
def test_missing_values_follow_lightgbms_own_decisions(continuous_data, params, missing_type):
    x, y = continuous_data
    x = x.copy()
    rng = np.random.default_rng(5)
    x[rng.random(x.shape) < 0.15] = np.nan
    x[rng.random(x.shape) < 0.05] = 0.0
    booster = _booster(x, y, num_leaves=15, **params)
    assert missing_type in {missing for _, missing in _splits(booster.dump_model())}
    trees = treeshap.flatten_booster(booster)
    values = treeshap.shap_values(trees, x, n_jobs=2)
    reference, base = _pred_contrib(booster, x)
    assert np.max(np.abs(values - reference)) < 1e-9
    assert abs(trees.base_value - base) < 1e-9


def test_a_model_whose_trees_have_no_split_explains_to_zero_plus_base():
    x = np.zeros((100, 3))
    y = np.r_[np.zeros(70), np.ones(30)].astype(int)
    booster = _booster(x, y, rounds=3)
    trees = treeshap.flatten_booster(booster)
    values = treeshap.shap_values(trees, x, n_jobs=2)
    assert np.array_equal(values, np.zeros_like(values))
    assert trees.base_value == pytest.approx(_pred_contrib(booster, x)[1], abs=1e-12)


def test_matrix_with_the_wrong_number_of_columns_is_refused(continuous_data):
    x, y = continuous_data
    trees = treeshap.flatten_booster(_booster(x, y, rounds=2))
    with pytest.raises(ValueError, match="expected a matrix with 8 columns"):
        treeshap.shap_values(trees, x[:, :5], n_jobs=1)


def test_categorical_splits_fall_back_to_lightgbms_treeshap(continuous_data):
    x, y = continuous_data
    booster = _booster(x, y, categorical=[5], num_leaves=15, min_data_per_group=5, cat_smooth=1)
    assert "==" in {decision for decision, _ in _splits(booster.dump_model())}
    with pytest.raises(treeshap.UnsupportedTree):
        treeshap.flatten_booster(booster)
    values, base = TreeShapComputer(booster, n_jobs=2).shap_values(x)
    reference, reference_base = _pred_contrib(booster, x)
    assert np.max(np.abs(values - reference)) < 1e-12
    assert base == reference_base


def _splits(dump: dict) -> list[tuple[str, str]]:
    """(decision type, missing type) of every split in the dump."""
    found: list[tuple[str, str]] = []
    stack = [tree["tree_structure"] for tree in dump["tree_info"]]
    while stack:
        node = stack.pop()
        if "split_index" in node:
            found.append((node["decision_type"], node["missing_type"]))
            stack += [node["left_child"], node["right_child"]]
    return found


def test_explanations_from_two_threads_at_once_are_both_exact(continuous_data):
    """A threaded web server can run two in-process rescores at the same time; each must stay exact."""
    from concurrent.futures import ThreadPoolExecutor

    x, y = continuous_data
    booster = _booster(x, y, num_leaves=15)
    trees = treeshap.flatten_booster(booster)
    expected = treeshap.shap_values(trees, x, n_jobs=2)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: treeshap.shap_values(trees, x, n_jobs=2), range(8)))
    assert all(np.array_equal(result, expected) for result in results)
