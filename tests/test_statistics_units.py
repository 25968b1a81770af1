"""The statistics' pieces against independent computations: exact enumerations, scipy's distributions, hand-worked
examples (each worked out in its comment)."""

import itertools

import numpy as np
import pytest
from scipy import stats

from ecg_crnn.analysis.contrasts import SeedRuns, contrast_bounds, estimate, model_estimate
from ecg_crnn.analysis.decisions import Claim, decide, p_values, verdict
from ecg_crnn.analysis.multiplicity import Node, graphical, ordered_groups
from ecg_crnn.analysis.power import (
    Components,
    minimal_detectable_effect,
    plan_seeds,
    power,
    seed_variance_upper,
)
from ecg_crnn.analysis.rare_classes import (
    bootstrap_variance_ratio,
    floor_rare_shares,
    minority_patients,
    variance_correction,
)
from ecg_crnn.analysis.rotation import corrected_resampled_t, heterogeneity, pool_folds
from ecg_crnn.analysis.selection import SeedSplit, choose, confirmation_runs, split_seeds

# ---- rare classes ---------------------------------------------------------------------------------------


def test_bootstrap_variance_ratio_of_two_patients_by_exact_enumeration():
    """Two positives with values x1, x2 and independent Poisson(1) counts c1, c2 (a resample with c1 + c2 = 0
    is redrawn): the resampled mean minus (x1 + x2)/2 is (x1 - x2)/2 * (c1 - c2)/(c1 + c2), so the bootstrap
    variance is (x1 - x2)^2/4 * E[((c1 - c2)/(c1 + c2))^2 | c1 + c2 >= 1]; E (x1 - x2)^2 = 2 sigma^2 against
    the true sigma^2 / 2: the ratio is E[((c1 - c2)/(c1 + c2))^2 | c1 + c2 >= 1]."""
    c = np.arange(60)
    pmf = stats.poisson.pmf(c, 1.0)
    c1, c2 = np.meshgrid(c, c, indexing="ij")
    joint = np.outer(pmf, pmf)
    total = c1 + c2
    ok = total > 0
    expected = np.sum(joint[ok] * ((c1 - c2)[ok] / total[ok]) ** 2) / joint[ok].sum()
    assert bootstrap_variance_ratio(2)[0] == pytest.approx(expected, rel=1e-9)
    assert expected == pytest.approx(0.5766, abs=1e-4)  # the reviewer's "58 % kept" for 2 positive patients


def test_bootstrap_variance_ratio_matches_a_multinomial_bootstrap():
    """r(3) = 0.865 (the reviewer's 87 %): a real multinomial bootstrap over 1,877 patients, 3 of them
    positive; 20,000 resamples (Monte Carlo SE of the ratio about 1 %; the tolerance 3 %)."""
    rng = np.random.default_rng(0)
    values = np.array([0.2, 0.9, 0.55])
    # the three positives' counts and everyone else's: the multinomial over 1,877 patients, marginalised
    counts = rng.multinomial(1877, [1 / 1877] * 3 + [1 - 3 / 1877], size=20000)[:, :3]
    counts = counts[counts.sum(axis=1) > 0]
    boot_var = np.var(counts @ values / counts.sum(axis=1))
    assert boot_var / (np.var(values, ddof=1) / 3) == pytest.approx(bootstrap_variance_ratio(3)[0], rel=0.03)
    assert np.isnan(bootstrap_variance_ratio(1)[0])
    with pytest.raises(ValueError, match="fewer than 2"):
        variance_correction([5, 1])


def test_minority_patients_counts_patients_not_records():
    # patients: p1 (two records, one positive for class 0), p2 (positive for 0 and 1), p3, p4 (negatives)
    y = np.array([[1, 0], [0, 0], [1, 1], [0, 0], [0, 0]])
    patients = np.array(["p1", "p1", "p2", "p3", "p4"])
    # class 0: 2 positive patients of 4 -> min(2, 2) = 2; class 1: 1 positive -> 1
    assert minority_patients(y, patients).tolist() == [2, 1]


def test_floor_rare_shares_by_hand():
    """Three rare classes (n = 2, 3, 5 < 20) and one common. Per-patient variances share * n: 0.1*2 = 0.2,
    0.2*3 = 0.6, 0.04*5 = 0.2; pooled with weights n - 1 (1, 2, 4): (0.2 + 1.2 + 0.8) / 7 = 0.3142857.
    Classes below it (the first and third) are raised to 0.3142857 / n; the second keeps its own."""
    shares = np.array([0.1, 0.2, 0.04, 0.01])
    out, dfs, df_pool = floor_rare_shares(shares, np.array([2.0, 3.0, 5.0, 100.0]), below=20)
    pooled = 2.2 / 7
    assert out == pytest.approx([pooled / 2, 0.2, pooled / 5, 0.01])
    assert df_pool == 7 and np.isnan(dfs[0]) and dfs[1] == 2 and np.isnan(dfs[2]) and dfs[3] == 99


# ---- contrasts ------------------------------------------------------------------------------------------


def _runs(points, resamples, seeds=None, val=None):
    seeds = tuple(range(len(points))) if seeds is None else seeds
    return SeedRuns(seeds, np.asarray(points, float), np.asarray(resamples, float), val)


def test_contrast_of_an_aggregate_figure_by_hand():
    """Two models, 3 seeds each, 4 shared resamples. Point: mean(a) - mean(b) = 0.90 - 0.88 = 0.02. Patient
    part: var (ddof 1) over resamples of mean_k a - mean_k b; seed part: s_a^2/3 + s_b^2/3; Welch-Satterthwaite
    df: V^2 / ((V_p^2/inf) + (s_a^2/3)^2/2 + (s_b^2/3)^2/2)."""
    a = _runs(
        [0.89, 0.90, 0.91], [[0.88, 0.90, 0.91, 0.89], [0.89, 0.91, 0.92, 0.90], [0.90, 0.92, 0.93, 0.91]]
    )
    b = _runs(
        [0.87, 0.88, 0.89], [[0.87, 0.88, 0.88, 0.87], [0.88, 0.89, 0.89, 0.88], [0.89, 0.90, 0.90, 0.89]]
    )
    est = estimate([(1, a), (-1, b)])
    diff = np.array([0.89, 0.91, 0.92, 0.90]) - np.array([0.88, 0.89, 0.89, 0.88])
    vp, s2 = np.var(diff, ddof=1), np.var([0.89, 0.90, 0.91], ddof=1)
    assert est.point == pytest.approx(0.02)
    assert est.patient_var == pytest.approx(vp)
    assert est.seed_var == pytest.approx(2 * s2 / 3)
    v = vp + 2 * s2 / 3
    df = v**2 / (2 * (s2 / 3) ** 2 / 2)
    assert est.df == pytest.approx(df)
    iv = est.interval(0.95)
    half = stats.t.ppf(0.975, df) * np.sqrt(v)
    assert (iv.lo, iv.hi) == pytest.approx((0.02 - half, 0.02 + half))
    assert not iv.clipped


def test_pairing_cancels_what_models_share_and_a_model_against_itself_is_exact():
    rng = np.random.default_rng(1)
    shared = rng.normal(0, 0.02, 200)  # patient luck both models share
    a = _runs([0.90, 0.901, 0.899], 0.90 + shared + rng.normal(0, 0.001, (3, 200)))
    b = _runs([0.88, 0.881, 0.879], 0.88 + shared + rng.normal(0, 0.001, (3, 200)))
    paired = estimate([(1, a), (-1, b)]).patient_var
    alone = model_estimate(a).patient_var + model_estimate(b).patient_var
    assert paired < alone / 50
    same = estimate([(1, a), (-1, a)])
    assert same.point == 0 and same.se == 0 and p_values(same, 0.005).difference == 1.0
    said = verdict(same, 0.005, 0.05)
    assert not (said.better or said.equivalent) and said.wording.startswith(
        "inconclusive: no variation measured"
    )


def test_per_class_contrast_applies_the_rare_class_correction_and_floor():
    """Two classes: class 0 with 2 minority patients, class 1 with 500 (one rare class: no floor, the pool
    needs two). Patient var = (f0 var(d0) + f1 var(d1) + 2 sqrt(f0 f1) cov(d0, d1)) / 4; df from the diagonal
    shares (f0 var0/4 on 1 df, f1 var1/4 on 499)."""
    rng = np.random.default_rng(2)
    res = rng.normal(0.9, 0.01, (2, 300, 2))
    pts = np.array([[0.9, 0.92], [0.91, 0.93]])
    m = _runs(pts, res)
    est = model_estimate(m, minority=np.array([2, 500]))
    d = res.mean(axis=0)
    f = variance_correction([2, 500])
    cov = np.cov(d, rowvar=False)
    expected = (f[0] * cov[0, 0] + f[1] * cov[1, 1] + 2 * np.sqrt(f[0] * f[1]) * cov[0, 1]) / 4
    assert est.patient_var == pytest.approx(expected)
    shares = f * np.diag(cov) / 4
    assert est.patient_df == pytest.approx(shares.sum() ** 2 / (shares[0] ** 2 / 1 + shares[1] ** 2 / 499))
    assert est.point == pytest.approx(pts.mean())


def test_bounded_figures_are_clipped_and_flagged():
    # subset accuracy near 0 with a wide seed spread: [point - t*se, point + t*se] crosses 0
    m = _runs([0.001, 0.03, 0.045], [[0.001, 0.002], [0.03, 0.031], [0.045, 0.046]])
    iv = model_estimate(m).interval()
    assert iv.lo == 0.0 and iv.clipped and iv.hi < 1
    assert contrast_bounds([1, -1], (0, 1)) == (-1, 1)
    assert contrast_bounds([1, -1, -1, 1], (0, 1)) == (-2, 2)
    flipped = model_estimate(m).negated()
    assert flipped.bounds == (-1.0, 0.0) and flipped.point == pytest.approx(-np.mean([0.001, 0.03, 0.045]))


def test_contrast_refuses_what_it_cannot_estimate():
    one = _runs([0.9], [[0.9, 0.91]])
    two = _runs([0.9, 0.91], [[0.9, 0.91], [0.9, 0.92]])
    other = _runs([0.9, 0.91], [[0.9, 0.91, 0.9], [0.9, 0.92, 0.9]])
    with pytest.raises(ValueError, match="at least 2 seeds"):
        estimate([(1, one)])
    with pytest.raises(ValueError, match="same patient resamples"):
        estimate([(1, two), (-1, other)])
    with pytest.raises(ValueError, match="NaN"):
        _runs([[0.9, np.nan], [0.9, 0.8]], np.zeros((2, 3, 2)))
    with pytest.raises(ValueError, match="per class"):
        estimate([(1, two)], minority=np.array([3]))


# ---- the tests of one contrast --------------------------------------------------------------------------


def _est(point, se, df):
    """An estimate whose variance is one seed part with the given df (K = df + 1 seeds, weight sqrt(K))."""
    from ecg_crnn.analysis.contrasts import Estimate, SeedPart

    k = df + 1
    return Estimate(point, 0.0, np.inf, (SeedPart(float(np.sqrt(k)), se**2, k),), (-1, 1))


def test_p_values_against_scipy_and_the_interval_rules():
    """Each test against its confidence-interval form: difference rejected at a iff 0 is outside the (1 - a)
    interval; non-inferiority iff the (1 - 2a) interval's lower end is above -M; TOST iff the (1 - 2a) interval
    lies inside (-M, M) (Schuirmann 1987)."""
    e = _est(0.003, 0.002, 10)
    assert e.se == pytest.approx(0.002) and e.df == pytest.approx(10)
    p = p_values(e, 0.005)
    assert p.difference == pytest.approx(2 * stats.t.sf(1.5, 10))
    assert p.noninferiority == pytest.approx(stats.t.sf(4.0, 10))
    assert p.equivalence == pytest.approx(stats.t.sf(1.0, 10))  # the upper test, (0.005 - 0.003)/0.002
    for point, se, margin, a in itertools.product(
        [-0.006, -0.002, 0.0, 0.004], [0.001, 0.003], [0.005], [0.05]
    ):
        e = _est(point, se, 7)
        p = p_values(e, margin)
        wide, narrow = e.interval(1 - a), e.interval(1 - 2 * a)
        assert (p.difference <= a) == (wide.lo > 0 or wide.hi < 0)
        assert (p.noninferiority <= a) == (narrow.lo > -margin)
        assert (p.equivalence <= a) == (narrow.lo > -margin and narrow.hi < margin)


def test_tost_textbook_example():
    """Hand-worked TOST: d = 0.002, se = 0.002, 10 df, margin 0.005: t_lower = (0.002 + 0.005)/0.002 = 3.5,
    t_upper = (0.005 - 0.002)/0.002 = 1.5; t_10 upper tails 0.00285 and 0.0823 (tables); p = 0.0823: equivalent
    at 10 % (the 80 % interval 0.002 +- 1.372 * 0.002 lies inside +-0.005), not at 5 %."""
    p = p_values(_est(0.002, 0.002, 10), 0.005)
    assert p.noninferiority == pytest.approx(0.00285, abs=5e-5)
    assert p.equivalence == pytest.approx(0.0823, abs=5e-4)
    assert verdict(_est(0.002, 0.002, 10), 0.005, 0.10).equivalent
    assert not verdict(_est(0.002, 0.002, 10), 0.005, 0.05).equivalent


def test_verdict_wording():
    assert verdict(_est(0.02, 0.002, 20), 0.005, 0.05).wording == "better"
    assert verdict(_est(0.003, 0.0005, 20), 0.005, 0.05).wording == "better, by less than 0.005"
    assert verdict(_est(-0.02, 0.002, 20), 0.005, 0.05).wording == "worse"
    assert verdict(_est(-0.003, 0.0005, 20), 0.005, 0.05).wording == "worse, but within 0.005"
    assert verdict(_est(0.0005, 0.001, 20), 0.005, 0.05).wording == "equivalent within 0.005"
    assert verdict(_est(0.002, 0.002, 20), 0.005, 0.05).wording == "non-inferior within 0.005"
    v = verdict(_est(0.001, 0.004, 20), 0.005, 0.05)
    assert v.wording == f"inconclusive: this study can resolve differences of {v.mde:.2g} or more"
    assert v.mde == pytest.approx(minimal_detectable_effect(0.004, 20, 0.05))
    closed = verdict(_est(0.001, 0.004, 20), 0.005, 0.0)
    assert closed.wording.startswith("inconclusive: not tested")


def test_decide_runs_one_graph_and_claims_only_what_each_node_holds():
    """Two primaries (weight 1/2 each) then one secondary. The first primary is clearly better and clearly
    within the margin (both its hypotheses rejected at 0.025): it leaves, and the second primary is tested at
    0.05 minus epsilon; it is equivalent, but the node holds only the difference: no claim is made about that.
    The secondary opens only when both primaries have left: here it stays at an epsilon-sized level (only a
    p-value below that would pass)."""
    claims = [
        Claim("p1", "primary", _est(0.003, 0.0004, 30), 0.005, ("difference", "equivalence"), 0.5),
        Claim("p2", "primary", _est(0.0005, 0.001, 30), 0.005, ("difference",), 0.5),
        Claim("s1", "secondary", _est(0.01, 0.002, 30), 0.005),
    ]
    out = decide(claims, ["primary", "secondary"], 0.05)
    assert out["p1"].wording == "better, by less than 0.005" and out["p1"].level == pytest.approx(0.025)
    assert out["p2"].wording.startswith("inconclusive: this study can resolve differences of")
    assert out["p2"].level == pytest.approx(0.05, rel=1e-5) and not out["p2"].equivalent
    assert out["s1"].level < 1e-6 and not out["s1"].better  # its p (2e-5) would pass any open gate
    with pytest.raises(ValueError, match="unknown tests"):
        verdict(_est(0.0, 0.001, 10), 0.005, 0.05, ("superiority",))


# ---- multiplicity ---------------------------------------------------------------------------------------


def _nodes(weights, ps, groups=None):
    groups = groups or ["g"] * len(ps)
    return [
        Node(f"H{i + 1}", gname, w, p if isinstance(p, dict) else {"difference": p})
        for i, (w, p, gname) in enumerate(zip(weights, ps, groups, strict=True))
    ]


def test_graphical_procedure_on_a_hand_worked_example():
    """Bretz et al. (2009)-style graph, alpha 0.025, weights (1/2, 1/2, 0, 0); edges H1->H2 1/2, H1->H3 1/2,
    H2->H1 1/2, H2->H4 1/2, H3->H2 1, H4->H1 1; p = (0.015, 0.005, 0.012, 0.022).
    1. Levels 0.0125 each for H1, H2: only H2 (0.005) is rejected. H2 leaves: w1 = 1/2 + 1/2 * 1/2 = 3/4,
       w4 = 1/4; g13 = (1/2 + 1/2 * 0) / (1 - 1/2 * 1/2) = 2/3, g14 = (0 + 1/2 * 1/2) / (3/4) = 1/3,
       g31 = (0 + 1 * 1/2) / 1 = 1/2, g34 = (0 + 1 * 1/2) / 1 = 1/2, g41 = 1.
    2. H1 at 3/4 * 0.025 = 0.01875: 0.015 rejected. H1 leaves: w3 = 3/4 * 2/3 = 1/2, w4 = 1/4 + 3/4 * 1/3 = 1/2;
       g34 = (1/2 + 1/2 * 1/3) / (1 - 1/2 * 2/3) = 1, g43 = (0 + 1 * 2/3) / (1 - 1 * 1/3) = 1.
    3. H3 at 0.0125: 0.012 rejected; H3 leaves: w4 = 1/2 + 1/2 * 1 = 1. 4. H4 at 0.025: 0.022 rejected."""
    g = np.array([[0, 0.5, 0.5, 0], [0.5, 0, 0, 0.5], [0, 1, 0, 0], [1, 0, 0, 0]])
    out = graphical(_nodes([0.5, 0.5, 0, 0], [0.015, 0.005, 0.012, 0.022]), g, 0.025)
    assert [r.rejected["difference"] for r in out] == [True, True, True, True]
    assert [r.level for r in out] == pytest.approx([0.01875, 0.0125, 0.0125, 0.025])
    # with p4 = 0.026 the last step fails; with p3 = 0.013 H3 fails and H4 stays at 1/2 * 0.025
    out = graphical(_nodes([0.5, 0.5, 0, 0], [0.015, 0.005, 0.013, 0.022]), g, 0.025)
    assert [r.rejected["difference"] for r in out] == [True, True, False, False]
    assert out[3].level == pytest.approx(0.0125)


def test_equal_weight_groups_are_holm_and_single_nodes_a_fixed_sequence():
    """Holm by hand on p = (0.01, 0.04, 0.03, 0.005) at 0.05: 0.005 <= 0.0125, 0.01 <= 0.0167, 0.03 > 0.025:
    stop. Fixed sequence (one node per group): tested in order at the full 0.05 until the first failure."""
    nodes = _nodes([0.25] * 4, [0.01, 0.04, 0.03, 0.005])
    out = graphical(nodes, ordered_groups(nodes, ["g"]), 0.05)
    assert [r.rejected["difference"] for r in out] == [True, False, False, True]
    seq = _nodes([1, 0, 0], [0.04, 0.049, 0.2], groups=["a", "b", "c"])
    out = graphical(seq, ordered_groups(seq, ["a", "b", "c"]), 0.05)
    assert [r.rejected["difference"] for r in out] == [True, True, False]
    assert out[2].level == pytest.approx(0.05, rel=1e-5)


def test_ordered_groups_open_the_next_group_only_when_a_group_is_cleared():
    nodes = _nodes([0.5, 0.5, 0, 0], [0.001, 0.051, 0.001, 0.001], groups=["p", "p", "s", "s"])
    g = ordered_groups(nodes, ["p", "s"])
    out = graphical(nodes, g, 0.05)
    # H2 fails at 0.05 * (1/2 + 1/2 (1 - eps)): the secondary group gets only epsilon-sized levels
    assert out[0].rejected["difference"] and not out[1].rejected["difference"]
    assert out[2].level < 1e-6 and not out[2].rejected["difference"]
    nodes = _nodes([0.5, 0.5, 0, 0], [0.001, 0.02, 0.03, 0.001], groups=["p", "p", "s", "s"])
    out = graphical(nodes, ordered_groups(nodes, ["p", "s"]), 0.05)
    # the primary group cleared: the secondary group is Holm at the full 0.05 (H4 at 0.025, then H3 at 0.05)
    assert all(r.rejected["difference"] for r in out)
    assert [r.level for r in out[2:]] == pytest.approx([0.05, 0.025], rel=1e-5)


def test_a_node_with_disjoint_hypotheses_keeps_its_weight_until_all_are_rejected():
    # H1: difference rejected (0.001) but equivalence not (0.3): its weight stays; H2 is tested at 0.025 only
    nodes = _nodes([0.5, 0.5], [{"difference": 0.001, "equivalence": 0.3}, 0.04])
    g = np.array([[0, 1.0], [1.0, 0]])
    out = graphical(nodes, g, 0.05)
    assert out[0].rejected == {"difference": True, "equivalence": False} and not out[0].cleared
    assert not out[1].rejected["difference"] and out[1].level == pytest.approx(0.025)
    nodes = _nodes([0.5, 0.5], [{"difference": 0.001, "equivalence": 0.01}, 0.04])
    out = graphical(nodes, g, 0.05)
    assert out[0].cleared and out[1].rejected["difference"] and out[1].level == pytest.approx(0.05)


def _closure_rejections(nodes, g, alpha):
    """The closed test written out: every subset S of nodes and every choice of one hypothesis per node of S is
    an intersection hypothesis; its weights w(S) come from removing the nodes outside S one at a time (the
    graph's update rule, written again here); it is rejected when some chosen p <= w_j(S) alpha. A hypothesis is
    rejected when every intersection that contains it is."""
    n = len(nodes)

    def weights(subset):
        w = np.array([x.weight for x in nodes], float)
        gg = np.array(g, float)
        alive = list(range(n))
        for j in [i for i in range(n) if i not in subset]:
            alive.remove(j)
            for lnode in alive:
                w[lnode] += w[j] * gg[j, lnode]
            new = gg.copy()
            for lnode in alive:
                for k in alive:
                    if lnode == k:
                        continue
                    d = 1 - gg[lnode, j] * gg[j, lnode]
                    new[lnode, k] = (gg[lnode, k] + gg[lnode, j] * gg[j, k]) / d if d > 0 else 0.0
            gg = new
            w[j] = 0
        return w

    rejected = {(i, h): True for i, x in enumerate(nodes) for h in x.p}
    for size in range(1, n + 1):
        for subset in itertools.combinations(range(n), size):
            w = weights(subset)
            for choice in itertools.product(*[list(nodes[i].p) for i in subset]):
                if not any(nodes[i].p[h] <= w[i] * alpha for i, h in zip(subset, choice, strict=True)):
                    for i, h in zip(subset, choice, strict=True):
                        rejected[(i, h)] = False
    return rejected


def test_the_shortcut_equals_the_closed_test_on_random_graphs():
    """Random 4-node graphs, some nodes holding two disjoint hypotheses, random p-values: the sequential
    procedure rejects exactly what the closed test (written out above, independently) rejects."""
    rng = np.random.default_rng(3)
    for _ in range(150):
        w = rng.dirichlet(np.ones(4)) * rng.choice([1.0, 0.8])
        g = rng.dirichlet(np.ones(3), size=4) * rng.choice([1.0, 0.7], size=(4, 1))
        g = np.array([np.insert(row, i, 0.0) for i, row in enumerate(g)])
        ps = [
            {"difference": rng.uniform(0, 0.06), "equivalence": rng.uniform(0, 0.06)}
            if rng.random() < 0.5
            else {"difference": rng.uniform(0, 0.06)}
            for _ in range(4)
        ]
        nodes = _nodes(list(w), ps)
        out = graphical(nodes, g, 0.05)
        closed = _closure_rejections(nodes, g, 0.05)
        assert {(i, h): r.rejected[h] for i, r in enumerate(out) for h in r.rejected} == closed


def test_graph_inputs_are_checked():
    with pytest.raises(ValueError, match="sum to at most 1"):
        graphical(_nodes([0.7, 0.7], [0.01, 0.01]), np.zeros((2, 2)), 0.05)
    with pytest.raises(ValueError, match="self-loops"):
        graphical(_nodes([0.5, 0.5], [0.01, 0.01]), np.eye(2), 0.05)
    with pytest.raises(ValueError, match="each group once"):
        ordered_groups(_nodes([0.5, 0.5], [0.01, 0.01], ["a", "b"]), ["a"])


# ---- power ----------------------------------------------------------------------------------------------


def test_power_against_closed_forms():
    # at no effect a two-sided test rejects at its level; with df = inf power is two normal tails
    assert power(0.0, 0.004, 12, 0.05) == pytest.approx(0.05, abs=1e-9)
    z = stats.norm.ppf(0.975)
    assert power(0.01, 0.004, np.inf, 0.05) == pytest.approx(
        stats.norm.sf(z - 2.5) + stats.norm.cdf(-z - 2.5)
    )
    # noncentral t by scipy for finite df
    c = stats.t.ppf(0.975, 8)
    assert power(0.01, 0.004, 8, 0.05) == pytest.approx(stats.nct.sf(c, 8, 2.5) + stats.nct.cdf(-c, 8, 2.5))
    # non-inferiority at the margin rejects at its level
    assert power(-0.005, 0.004, 8, 0.05, "noninferiority", 0.005) == pytest.approx(0.05, abs=1e-9)
    mde = minimal_detectable_effect(0.004, np.inf, 0.05)
    assert mde == pytest.approx((z + stats.norm.ppf(0.8)) * 0.004, rel=1e-3)  # the textbook (z + z_power) se
    assert power(minimal_detectable_effect(0.004, 6, 0.001), 0.004, 6, 0.001) == pytest.approx(0.8, abs=1e-6)
    m = minimal_detectable_effect(0.004, 10, 0.05, kind="equivalence")
    assert power(0.0, 0.004, 10, 0.05, "equivalence", m) == pytest.approx(0.8, abs=1e-6)


def test_seed_variance_upper_bound():
    # chi-square with 2 df: P(X <= x) = 1 - exp(-x/2), so the 20 % quantile is -2 ln 0.8 = 0.4463
    assert seed_variance_upper(1.0, 2, 0.8) == pytest.approx(2 / (-2 * np.log(0.8)))
    assert seed_variance_upper(1.0, 9, 0.8) == pytest.approx(9 / stats.chi2.ppf(0.2, 9))


def test_plan_seeds_finds_the_fewest_seeds_or_says_none_suffice():
    comp = Components(patient_var=1e-6, patient_df=50, seeds=((1.0, 9e-6, 3), (-1.0, 9e-6, 3)))
    plan = plan_seeds(comp, target_mde=0.006, level=0.05)
    assert plan.seeds is not None and plan.mde <= 0.006
    se, df = comp.planned(plan.seeds - 1)
    assert minimal_detectable_effect(se, df, 0.05) > 0.006  # one seed fewer misses the target
    assert plan.seed_sd_upper[0] == pytest.approx(np.sqrt(seed_variance_upper(9e-6, 2)))
    noisy = Components(patient_var=5e-5, patient_df=30, seeds=comp.seeds)
    plan = plan_seeds(noisy, target_mde=0.01, level=0.05)
    # the patient part alone: (t_30 + t_30,0.8) * sqrt(5e-5) = 0.020 > 0.01: no number of seeds reaches 0.01
    assert plan.seeds is None and plan.mde_unlimited_seeds > 0.01
    assert plan.mde_by_folds[0] > plan.mde_by_folds[-1] and plan.folds is not None
    assert plan.mde_by_folds[plan.folds - 1] <= 0.01 < plan.mde_by_folds[plan.folds - 2]


# ---- rotation and selection -----------------------------------------------------------------------------


def test_pool_folds_and_the_corrected_resampled_t_by_hand():
    per_fold = [_est(d, 0.004, 6) for d in (0.01, 0.0, 0.005, 0.002)]
    pooled = pool_folds(per_fold)
    assert pooled.point == pytest.approx(0.00425)
    assert pooled.se == pytest.approx(0.004 / 2)  # sqrt(4 * 0.004^2) / 4
    assert pooled.df == pytest.approx(24)  # four independent 6-df parts of equal size
    values = np.array([0.01, 0.0, 0.005, 0.002])
    nb = corrected_resampled_t(values, n_test=1, n_train=8)
    assert nb.point == pytest.approx(values.mean()) and nb.df == pytest.approx(3)
    assert nb.var == pytest.approx((1 / 4 + 1 / 8) * np.var(values, ddof=1))
    h = heterogeneity(per_fold)
    w = 1 / 0.004**2
    assert h.q == pytest.approx(w * np.sum((values - values.mean()) ** 2)) and h.df == 3
    assert h.p == pytest.approx(stats.chi2.sf(h.q, 3))


def test_seed_split_choice_and_confirmation():
    split = split_seeds([4, 7, 1, 2, 9], 2)
    assert split == SeedSplit((4, 7), (1, 2, 9))
    with pytest.raises(ValueError, match="at least 2 confirmation"):
        split_seeds([0, 1, 2], 2)
    res = np.zeros((5, 4))
    runs = {
        # a leads on the selection seeds (4, 7); b would lead on all seeds: the choice must be a
        "a": _runs([0.9] * 5, res, (4, 7, 1, 2, 9), val=[0.95, 0.95, 0.5, 0.5, 0.5]),
        "b": _runs([0.9] * 5, res, (4, 7, 1, 2, 9), val=[0.94, 0.94, 0.99, 0.99, 0.99]),
        "c": _runs([0.9] * 5, res, (4, 7, 1, 2, 9), val=[0.95, 0.95, 0.1, 0.1, 0.1]),
    }
    assert choose(runs, ["a", "b", "c"], split) == "a"  # ties go to the first named
    conf = confirmation_runs(runs, split)
    assert conf["b"].seeds == (1, 2, 9) and conf["b"].val.tolist() == [0.99, 0.99, 0.99]
    assert list(confirmation_runs(runs, split, ["c"])) == ["c"]
