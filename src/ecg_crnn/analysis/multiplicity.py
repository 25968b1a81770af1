"""A graphical multiple-testing procedure that keeps the family-wise error rate over every claim.

Bretz, Maurer, Brannath & Posch (2009), "A graphical approach to sequentially rejective multiple test
procedures", Stat Med 28:586-604, Algorithm 1: each node holds a share of alpha (initial weights summing to at
most 1) and passes it along directed edges (a transition matrix whose rows sum to at most 1) once it is
rejected; the graph is updated so that the procedure is a shortcut of a closed test of weighted Bonferroni
tests. Holm, fixed-sequence, fallback and serial or parallel gatekeeping are special graphs.

One extension, for the partitioning principle (decisions): a node is one contrast and may hold several
hypotheses about it that cannot be true together (difference, non-inferiority, equivalence). All of them are
tested at the node's current level; the node passes its weight on only when every one of them is rejected. Why
only then: in the closed test, an intersection may hold whichever of the node's hypotheses has the largest
p-value, so the node's weight is free for the others only when that one is rejected too. (Passing it on after
the difference alone lets a node spend its level twice: 1.5 alpha in the worst case, a negative control in the
tests.) A node with a single hypothesis is the usual graph.

The order of the study's claims is data: the caller names groups and their order (ordered_groups) or gives its
own transition matrix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Node:
    name: str
    group: str
    weight: float  # initial share of alpha
    p: Mapping[str, float]  # hypothesis -> p-value; mutually exclusive hypotheses about one contrast


@dataclass(frozen=True)
class NodeResult:
    name: str
    group: str
    level: float  # the highest local level the node's hypotheses were tested at
    rejected: Mapping[str, bool] = field(default_factory=dict)

    @property
    def cleared(self) -> bool:
        return all(self.rejected.values())


def check_graph(weights: np.ndarray, transitions: np.ndarray) -> None:
    w, g = np.asarray(weights, float), np.asarray(transitions, float)
    n = len(w)
    if g.shape != (n, n):
        raise ValueError(f"the transition matrix must be {n} x {n}")
    if (w < 0).any() or w.sum() > 1 + 1e-12:
        raise ValueError("initial weights must be >= 0 and sum to at most 1")
    if (g < 0).any() or (g.sum(axis=1) > 1 + 1e-12).any() or np.any(np.diag(g) != 0):
        raise ValueError("transitions must be >= 0, rows summing to at most 1, with no self-loops")


def remove_node(weights: np.ndarray, g: np.ndarray, active: np.ndarray, j: int) -> None:
    """Bretz et al. (2009) Algorithm 1, step 2, in place: node j leaves, its weight moves along its edges, and
    every path through j becomes a direct edge."""
    rest = active.copy()
    rest[j] = False
    weights[rest] += weights[j] * g[j, rest]
    weights[j] = 0.0
    g_lj, g_jk = g[:, j].copy(), g[j, :].copy()
    denom = 1.0 - g_lj * g_jk  # row l: 1 - g_lj g_jl
    g += np.outer(g_lj, g_jk)
    ok = denom > 0
    g[ok] /= denom[ok, None]
    g[~ok] = 0.0
    g[~rest] = 0.0  # rows and columns of nodes that left are no longer read
    g[:, ~rest] = 0.0
    np.fill_diagonal(g, 0.0)
    active[j] = False


def graphical(nodes: Sequence[Node], transitions: np.ndarray, alpha: float) -> list[NodeResult]:
    """Run the procedure; every hypothesis is rejected when its p-value is at most its node's level
    alpha * weight, levels only grow as nodes leave."""
    w = np.array([n.weight for n in nodes], float)
    g = np.array(transitions, float, copy=True)
    check_graph(w, g)
    kinds = list(dict.fromkeys(h for n in nodes for h in n.p))
    p = np.full((len(nodes), len(kinds)), np.nan)  # NaN: the node does not hold that hypothesis
    for i, node in enumerate(nodes):
        for h, value in node.p.items():
            p[i, kinds.index(h)] = value
    held = ~np.isnan(p)
    rejected = np.zeros(p.shape, bool)
    active = np.ones(len(nodes), bool)
    level = np.zeros(len(nodes))
    while True:
        now = alpha * w
        level[active] = np.maximum(level[active], now[active])
        rejected |= held & (active & (w > 0))[:, None] & (p <= now[:, None])
        cleared = np.flatnonzero(active & (rejected | ~held).all(axis=1))
        if len(cleared) == 0:
            break
        for j in cleared:  # the order of removal does not change the result (Bretz et al. 2009)
            remove_node(w, g, active, j)
    return [
        NodeResult(n.name, n.group, float(level[i]), {h: bool(rejected[i, kinds.index(h)]) for h in n.p})
        for i, n in enumerate(nodes)
    ]


def ordered_groups(nodes: Sequence[Node], order: Sequence[str], epsilon: float = 1e-6) -> np.ndarray:
    """Transitions for groups tested in `order`: within a group, a rejected node's weight goes to the group's
    other nodes in proportion to their initial weights (equally when they have none): weighted Holm; a node
    also sends epsilon to the next group, and once every node of a group has left, what is left of the
    group's weight flows on through those edges (Bretz et al. 2009's epsilon-edges: the next group gets a
    negligible share until then, and all of it after). The last group's weight has nowhere to go."""
    groups = {n.group for n in nodes}
    if set(order) != groups or len(order) != len(groups):
        raise ValueError(f"order must name each group once: {sorted(groups)}")
    rank = {gname: i for i, gname in enumerate(order)}
    members = {gname: [i for i, n in enumerate(nodes) if n.group == gname] for gname in order}
    g = np.zeros((len(nodes), len(nodes)))
    for i, node in enumerate(nodes):
        same = [j for j in members[node.group] if j != i]
        nxt = order[rank[node.group] + 1] if rank[node.group] + 1 < len(order) else None
        onward = _shares([nodes[j].weight for j in members[nxt]]) if nxt else []
        within = _shares([nodes[j].weight for j in same])
        keep = 1.0 - (epsilon if nxt else 0.0) if same else 0.0
        for j, s in zip(same, within, strict=True):
            g[i, j] = keep * s
        if nxt:
            for j, s in zip(members[nxt], onward, strict=True):
                g[i, j] = (1.0 - keep) * s
    return g


def _shares(weights: Sequence[float]) -> list[float]:
    w = np.asarray(weights, float)
    if len(w) == 0:
        return []
    return list(w / w.sum()) if w.sum() > 0 else [1.0 / len(w)] * len(w)
