"""Exact path-dependent TreeSHAP for LightGBM boosters, computed once per tree cell.

The values are those of ``shap.TreeExplainer(booster).shap_values(X)`` and of LightGBM's
``pred_contrib`` (Lundberg et al., "Consistent individualized feature attribution for tree
ensembles", Algorithm 2), to floating-point rounding; tests check both.

Why it is faster: a row's SHAP values for one tree depend on the row only through the
direction it takes at every split of that tree. Rows that agree on all of a tree's splits lie in
the same *cell* of that tree and get identical values, so each tree computes TreeSHAP once per
distinct cell (found with a hash of the split decisions) and adds the result to every row of the
cell. Student records are mostly small integers, categories and grades, so a tree with a few
dozen splits sees a few thousand distinct cells among tens of thousands of students, and the
per-row work shrinks to evaluating the splits and one hash probe per tree. Per cell the work is
a table lookup: a row's one fractions on a leaf's path are 0 or 1, so a leaf whose path has d
distinct features has only 2**d outcomes, computed once per model. With no repeated cells at
all (every row different at every tree) the lookups still make it several times faster than
plain TreeSHAP. Rows are split into blocks that run on separate threads (the kernel releases
the GIL); each block is independent, so the result does not depend on the number of threads.

The kernels are compiled with numba once per process, on first use (a few seconds). They are
deliberately not cached on disk: numba's cache is a pickle, and the platform loads no pickles.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
from numba import njit

MISSING_NONE, MISSING_ZERO, MISSING_NAN = 0, 1, 2
_MISSING_TYPES = {"None": MISSING_NONE, "Zero": MISSING_ZERO, "NaN": MISSING_NAN}
# LightGBM's kZeroThreshold: values this close to 0 count as zero for missing_type=Zero.
ZERO_THRESHOLD = 1e-35


# Leaves up to this many distinct path features get a precomputed table of 2**depth outcomes,
# within a budget of this many float64 values (64 MB) per model.
LEAF_TABLE_MAX_DEPTH = 12
LEAF_TABLE_MAX_VALUES = 8_000_000


class UnsupportedTree(ValueError):
    """The booster uses a split this explainer does not evaluate (categorical bitset splits)."""


@dataclass(frozen=True)
class FlatTrees:
    """A booster's trees as flat arrays the kernels walk; offsets index per-tree slices."""

    node_offset: np.ndarray  # [T + 1] internal nodes of tree t: node_offset[t]:node_offset[t+1]
    node_feature: np.ndarray
    node_threshold: np.ndarray
    node_default_left: np.ndarray
    node_missing: np.ndarray
    leaf_offset: np.ndarray  # [T + 1]
    leaf_value: np.ndarray
    leaf_slot_offset: np.ndarray  # [L + 1] unique features on each leaf's path
    slot_zero: np.ndarray  # share of training rows that follow the path's splits on that feature
    slot_local_feature: np.ndarray  # index into the tree's own feature list
    leaf_step_offset: np.ndarray  # [L + 1] the splits on each leaf's path
    step_node: np.ndarray  # local internal-node index
    step_left: np.ndarray  # 1 when the path goes left at that node
    step_slot: np.ndarray  # which of the leaf's slots the node's feature is
    tree_feature_offset: np.ndarray  # [T + 1]
    tree_feature: np.ndarray  # model column of each of the tree's features
    leaf_table_offset: np.ndarray  # [L] start of the leaf's precomputed contributions, -1 if none
    leaf_table: np.ndarray
    base_value: float
    num_columns: int


def flatten_booster(booster: lgb.Booster) -> FlatTrees:
    """Read the booster's dump into flat arrays (one pass over every node)."""
    dump = booster.dump_model()
    node_offset, leaf_offset, leaf_slot_offset, leaf_step_offset, tree_feature_offset = [0], [0], [0], [0], [0]
    node_feature: list[int] = []
    node_threshold: list[float] = []
    node_default_left: list[int] = []
    node_missing: list[int] = []
    leaf_value: list[float] = []
    slot_zero: list[float] = []
    slot_local_feature: list[int] = []
    step_node: list[int] = []
    step_left: list[int] = []
    step_slot: list[int] = []
    tree_feature: list[int] = []
    base_value = 0.0

    for tree in dump["tree_info"]:
        root = tree["tree_structure"]
        if "split_index" not in root:  # a single leaf: only shifts the base value
            base_value += float(root["leaf_value"])
            node_offset.append(len(node_feature))
            leaf_offset.append(len(leaf_value))
            tree_feature_offset.append(len(tree_feature))
            continue
        local_of_feature: dict[int, int] = {}
        first_node = len(node_feature)
        weighted_leaves = 0.0

        # Depth-first walk; each leaf's path is a list of (local node, went left, node cover, child cover).
        stack: list[tuple[dict, list[tuple[int, int, float, float]]]] = [(root, [])]
        while stack:
            node, path = stack.pop()
            if "split_index" in node:
                if node.get("decision_type", "<=") != "<=":
                    raise UnsupportedTree(f"split type {node.get('decision_type')!r} is not supported")
                local = len(node_feature) - first_node
                feature = int(node["split_feature"])
                node_feature.append(feature)
                node_threshold.append(float(node["threshold"]))
                node_default_left.append(1 if node.get("default_left", True) else 0)
                node_missing.append(_MISSING_TYPES[node.get("missing_type", "None")])
                local_of_feature.setdefault(feature, len(local_of_feature))
                cover = float(node["internal_count"])
                for child, went_left in ((node["right_child"], 0), (node["left_child"], 1)):
                    child_cover = float(child["internal_count"] if "split_index" in child else child["leaf_count"])
                    stack.append((child, [*path, (local, went_left, cover, child_cover)]))
                continue
            value = float(node["leaf_value"])
            leaf_value.append(value)
            weighted_leaves += value * float(node["leaf_count"])
            slots: dict[int, int] = {}
            for local, went_left, cover, child_cover in path:
                feature = node_feature[first_node + local]
                if feature not in slots:
                    slots[feature] = len(slots)
                    slot_zero.append(1.0)
                    slot_local_feature.append(local_of_feature[feature])
                slot = slots[feature]
                slot_zero[leaf_slot_offset[-1] + slot] *= child_cover / cover if cover > 0 else 0.0
                step_node.append(local)
                step_left.append(went_left)
                step_slot.append(slot)
            leaf_slot_offset.append(len(slot_zero))
            leaf_step_offset.append(len(step_node))
        base_value += weighted_leaves / float(root["internal_count"])
        tree_feature.extend(sorted(local_of_feature, key=local_of_feature.__getitem__))
        node_offset.append(len(node_feature))
        leaf_offset.append(len(leaf_value))
        tree_feature_offset.append(len(tree_feature))

    def ints(values: list[int]) -> np.ndarray:
        return np.asarray(values, dtype=np.int64)

    def floats(values: list[float]) -> np.ndarray:
        return np.asarray(values, dtype=np.float64)

    depths = np.diff(np.asarray(leaf_slot_offset, dtype=np.int64))
    sizes = np.where(depths <= LEAF_TABLE_MAX_DEPTH, (1 << np.minimum(depths, LEAF_TABLE_MAX_DEPTH)) * depths, 0)
    # Tables for as many leaves as the memory budget allows, in tree order; the rest are computed per cell.
    tabled = (sizes > 0) & (np.cumsum(sizes) <= LEAF_TABLE_MAX_VALUES)
    leaf_table_offset = np.where(tabled, np.cumsum(np.where(tabled, sizes, 0)) - sizes, -1).astype(np.int64)
    table_size = int(sizes[tabled].sum())
    return FlatTrees(
        node_offset=ints(node_offset), node_feature=ints(node_feature), node_threshold=floats(node_threshold),
        node_default_left=ints(node_default_left), node_missing=ints(node_missing),
        leaf_offset=ints(leaf_offset), leaf_value=floats(leaf_value), leaf_slot_offset=ints(leaf_slot_offset),
        slot_zero=floats(slot_zero), slot_local_feature=ints(slot_local_feature),
        leaf_step_offset=ints(leaf_step_offset), step_node=ints(step_node), step_left=ints(step_left),
        step_slot=ints(step_slot), tree_feature_offset=ints(tree_feature_offset), tree_feature=ints(tree_feature),
        leaf_table_offset=leaf_table_offset,
        leaf_table=_leaf_tables(floats(leaf_value), ints(leaf_slot_offset), floats(slot_zero), leaf_table_offset,
                                table_size),
        base_value=base_value, num_columns=booster.num_feature(),
    )


@njit(inline="always")
def _goes_left(value: float, threshold: float, default_left: int, missing: int) -> bool:
    # LightGBM's NumericalDecision, so rows with missing values take the booster's own path.
    if np.isnan(value) and missing != MISSING_NAN:
        value = 0.0
    if (missing == MISSING_ZERO and -ZERO_THRESHOLD <= value <= ZERO_THRESHOLD) or (
        missing == MISSING_NAN and np.isnan(value)
    ):
        return default_left == 1
    return value <= threshold

@njit
def _leaf_shap(depth, first_slot, slot_zero, one, value, weights, reciprocal, contribution):
    """One leaf's share of the SHAP values of its path's unique features, into ``contribution[:depth]``.

    ``slot_zero`` holds each feature's zero fraction (the share of training rows that follow
    the path's splits on it) and ``one`` its one fraction (does the row follow all of them: 0
    or 1). This is shap's EXTEND over the path, then UNWOUND-PATH-SUM per feature, as in the
    recursive algorithm; ``reciprocal[k]`` is 1/k, so the divisions become multiplications.
    """
    weights[0] = 1.0  # the empty root element
    for d in range(1, depth + 1):
        zero_fraction = slot_zero[first_slot + d - 1]
        one_fraction = one[d - 1]
        scale = reciprocal[d + 1]
        weights[d] = 0.0
        for i in range(d - 1, -1, -1):
            weights[i + 1] += one_fraction * weights[i] * (i + 1) * scale
            weights[i] = zero_fraction * weights[i] * (d - i) * scale
    for s in range(depth):
        zero_fraction = slot_zero[first_slot + s]
        total = 0.0
        if one[s] != 0.0:  # one fraction is exactly 1
            next_one_portion = weights[depth]
            for i in range(depth - 1, -1, -1):
                tmp = next_one_portion * (depth + 1) * reciprocal[i + 1]
                total += tmp
                next_one_portion = weights[i] - tmp * zero_fraction * (depth - i) * reciprocal[depth + 1]
            contribution[s] = total * (1.0 - zero_fraction) * value
        else:  # one fraction 0: (0 - zero) times the unwound sum, whose 1/zero cancels it
            for i in range(depth - 1, -1, -1):
                total += weights[i] * (depth + 1) * reciprocal[depth - i]
            contribution[s] = -total * value

@njit
def _leaf_tables(leaf_value, leaf_slot_offset, slot_zero, table_offset, table_size):
    """Every leaf's contributions for each pattern of one fractions, where ``table_offset`` >= 0.

    A row's one fractions on a path are 0 or 1, so a leaf of depth d has only 2**d possible
    outcomes; computing them once turns the per-cell work into a lookup.
    """
    table = np.empty(table_size, dtype=np.float64)
    max_depth = 1
    for leaf in range(len(leaf_value)):
        max_depth = max(max_depth, leaf_slot_offset[leaf + 1] - leaf_slot_offset[leaf])
    one = np.empty(max_depth, dtype=np.float64)
    weights = np.empty(max_depth + 1, dtype=np.float64)
    reciprocal = _reciprocals(max_depth)
    for leaf in range(len(leaf_value)):
        offset = table_offset[leaf]
        if offset < 0:
            continue
        first_slot = leaf_slot_offset[leaf]
        depth = leaf_slot_offset[leaf + 1] - first_slot
        for pattern in range(1 << depth):
            for s in range(depth):
                one[s] = float((pattern >> s) & 1)
            _leaf_shap(depth, first_slot, slot_zero, one, leaf_value[leaf], weights, reciprocal,
                       table[offset + pattern * depth:offset + (pattern + 1) * depth])
    return table

@njit
def _reciprocals(max_depth):
    reciprocal = np.zeros(max_depth + 2, dtype=np.float64)
    for k in range(1, max_depth + 2):
        reciprocal[k] = 1.0 / k
    return reciprocal

@njit
def _cell_shap(keys, row, first_leaf, end_leaf, leaf_value, leaf_slot_offset, slot_zero, slot_local_feature,
               leaf_step_offset, step_node, step_left, step_slot, leaf_table_offset, leaf_table, out, one,
               weights, reciprocal, contribution):
    """TreeSHAP of one tree for one cell (the split decisions in ``keys[:, row]``), added into ``out``."""
    for leaf in range(first_leaf, end_leaf):
        first_slot = leaf_slot_offset[leaf]
        depth = leaf_slot_offset[leaf + 1] - first_slot
        offset = leaf_table_offset[leaf]
        if offset >= 0:
            pattern = (1 << depth) - 1
            for step in range(leaf_step_offset[leaf], leaf_step_offset[leaf + 1]):
                node = step_node[step]
                went_left = (keys[node >> 6, row] >> np.uint64(node & 63)) & np.uint64(1)
                if went_left != np.uint64(step_left[step]):
                    pattern &= ~(1 << step_slot[step])
            start = offset + pattern * depth
            for s in range(depth):
                out[slot_local_feature[first_slot + s]] += leaf_table[start + s]
            continue
        for s in range(depth):
            one[s] = 1.0
        for step in range(leaf_step_offset[leaf], leaf_step_offset[leaf + 1]):
            node = step_node[step]
            went_left = (keys[node >> 6, row] >> np.uint64(node & 63)) & np.uint64(1)
            if went_left != np.uint64(step_left[step]):
                one[step_slot[step]] = 0.0
        _leaf_shap(depth, first_slot, slot_zero, one, leaf_value[leaf], weights, reciprocal, contribution)
        for s in range(depth):
            out[slot_local_feature[first_slot + s]] += contribution[s]

@njit(nogil=True)
def _explain_block(x, phi, start, stop, exact_compare, node_offset, node_feature, node_threshold,
                   node_default_left, node_missing, leaf_offset, leaf_value, leaf_slot_offset, slot_zero,
                   slot_local_feature, leaf_step_offset, step_node, step_left, step_slot, leaf_table_offset,
                   leaf_table, tree_feature_offset, tree_feature):
    """Columns start:stop of the transposed matrix ``x`` [features, rows] into ``phi`` [columns, rows].

    Both are column-major so each split is evaluated over consecutive rows (a vectorisable
    loop) and each feature's values are added over consecutive rows.
    """
    rows = stop - start
    table_size = 1
    while table_size < 2 * rows:
        table_size *= 2
    mask = table_size - 1
    num_trees = len(node_offset) - 1
    max_nodes, max_features, max_depth = 1, 1, 1
    for t in range(num_trees):
        max_nodes = max(max_nodes, node_offset[t + 1] - node_offset[t])
        max_features = max(max_features, tree_feature_offset[t + 1] - tree_feature_offset[t])
    for leaf in range(len(leaf_slot_offset) - 1):
        max_depth = max(max_depth, leaf_slot_offset[leaf + 1] - leaf_slot_offset[leaf])
    keys = np.empty(((max_nodes + 63) // 64, rows), dtype=np.uint64)
    cell_of_row = np.empty(rows, dtype=np.int64)
    first_row_of_cell = np.empty(rows, dtype=np.int64)
    table = np.empty(table_size, dtype=np.int64)
    cell_values = np.empty((rows, max_features), dtype=np.float64)
    one = np.empty(max_depth, dtype=np.float64)
    weights = np.empty(max_depth + 1, dtype=np.float64)
    contribution = np.empty(max_depth, dtype=np.float64)
    reciprocal = _reciprocals(max_depth)

    for t in range(num_trees):
        first_node = node_offset[t]
        num_nodes = node_offset[t + 1] - first_node
        if num_nodes == 0:
            continue
        words = (num_nodes + 63) // 64
        keys[:words, :] = 0
        for n in range(num_nodes):
            g = first_node + n
            column = x[node_feature[g]]
            threshold = node_threshold[g]
            word = n >> 6
            bit = np.uint64(n & 63)
            if exact_compare and node_missing[g] != MISSING_ZERO:
                for r in range(rows):
                    keys[word, r] |= np.uint64(column[start + r] <= threshold) << bit
            else:
                for r in range(rows):
                    if _goes_left(column[start + r], threshold, node_default_left[g], node_missing[g]):
                        keys[word, r] |= np.uint64(1) << bit
        num_features = tree_feature_offset[t + 1] - tree_feature_offset[t]
        table[:] = -1
        cells = 0
        for r in range(rows):
            h = np.uint64(0)
            for w in range(words):
                h = (h ^ keys[w, r]) * np.uint64(0x9E3779B97F4A7C15)
            slot = np.int64(h >> np.uint64(32)) & mask
            while True:
                cell = table[slot]
                if cell == -1:  # a new cell: compute its values once
                    table[slot] = cells
                    cell_of_row[r] = cells
                    first_row_of_cell[cells] = r
                    cell_values[cells, :num_features] = 0.0
                    _cell_shap(keys, r, leaf_offset[t], leaf_offset[t + 1], leaf_value, leaf_slot_offset,
                               slot_zero, slot_local_feature, leaf_step_offset, step_node, step_left, step_slot,
                               leaf_table_offset, leaf_table, cell_values[cells], one, weights, reciprocal,
                               contribution)
                    cells += 1
                    break
                same = True
                representative = first_row_of_cell[cell]
                for w in range(words):
                    if keys[w, representative] != keys[w, r]:
                        same = False
                        break
                if same:
                    cell_of_row[r] = cell
                    break
                slot = (slot + 1) & mask
        first_feature = tree_feature_offset[t]
        for f in range(num_features):
            target = phi[tree_feature[first_feature + f]]
            for r in range(rows):
                target[start + r] += cell_values[cell_of_row[r], f]




# Rows per block: enough for cells to repeat within a block, few enough to bound the scratch memory.
MAX_BLOCK_ROWS = 65_536


def shap_values(trees: FlatTrees, matrix: np.ndarray, n_jobs: int) -> np.ndarray:
    """[n, num_columns] SHAP values in log-odds; with ``trees.base_value`` they sum to the raw score."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] != trees.num_columns:
        raise ValueError(f"expected a matrix with {trees.num_columns} columns, got shape {matrix.shape}")
    n = len(matrix)
    if n == 0:
        return np.zeros((0, trees.num_columns), dtype=np.float64)
    x = np.ascontiguousarray(matrix.T)
    # Without NaN a split is a plain comparison (LightGBM only diverts NaN, or zero under
    # missing_type=Zero, to the default side), which the kernel evaluates branch-free.
    exact_compare = not bool(np.isnan(x).any())
    phi = np.zeros((trees.num_columns, n), dtype=np.float64)
    threads = max(1, n_jobs)
    blocks = max(threads, -(-n // MAX_BLOCK_ROWS)) if n >= 256 * threads else 1
    block_starts = np.linspace(0, n, blocks + 1).astype(np.int64)

    def explain_block(block: int) -> None:
        _explain_block(x, phi, block_starts[block], block_starts[block + 1], exact_compare, trees.node_offset,
                       trees.node_feature, trees.node_threshold, trees.node_default_left, trees.node_missing,
                       trees.leaf_offset, trees.leaf_value, trees.leaf_slot_offset, trees.slot_zero,
                       trees.slot_local_feature, trees.leaf_step_offset, trees.step_node, trees.step_left,
                       trees.step_slot, trees.leaf_table_offset, trees.leaf_table, trees.tree_feature_offset,
                       trees.tree_feature)

    # The kernel releases the GIL and blocks write disjoint rows, so plain threads run them in parallel.
    if threads == 1 or blocks == 1:
        for block in range(blocks):
            explain_block(block)
    else:
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="treeshap") as pool:
            list(pool.map(explain_block, range(blocks)))
    return np.ascontiguousarray(phi.T)
