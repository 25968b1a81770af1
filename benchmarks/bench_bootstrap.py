"""The patient bootstrap of one model at fold-10 size: ecg-crnn's weighted, vectorized figures against the naive
loop (draw the resample's records, then scikit-learn's metrics on them), same resamples, same figures.

Fold 10 of PTB-XL: 2,198 records of ~1,900 patients, 23 classes (two with 2 positives). Both give the same
numbers (checked here on the first resamples); the naive loop is timed on --naive resamples and scaled.
Usage: python benchmarks/bench_bootstrap.py [--resamples 1000] [--naive 100] [--write]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import machine, write_section
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, hamming_loss, roc_auc_score

from ecg_crnn.metrics import TESTED, bootstrap_figures, patient_weights, scored_classes


def fold_ten(seed: int = 0):
    rng = np.random.default_rng(seed)
    n, c = 2198, 23
    prevalence = np.r_[0.001, 0.001, rng.uniform(0.005, 0.4, c - 2)]
    y = rng.random((n, c)) < prevalence
    s = np.clip(rng.normal(0.25 + 0.5 * y, 0.2), 0, 1).astype(np.float32)
    patients = np.sort(
        np.r_[np.arange(1900), rng.integers(0, 1900, n - 1900)]
    )  # 1,900 patients, some with several
    return patients, y, s, np.full(c, 0.5)


def naive(y, s, t, weights) -> dict[str, np.ndarray]:
    cols = np.flatnonzero(scored_classes(y))
    out = {k: [] for k in TESTED}
    for w in weights:
        idx = np.repeat(np.arange(len(y)), w)
        yr, sr = y[idx], s[idx]
        pred = (sr >= t).astype(int)
        out["macro_auroc"].append(roc_auc_score(yr[:, cols], sr[:, cols], average="macro"))
        out["macro_auprc"].append(average_precision_score(yr[:, cols], sr[:, cols], average="macro"))
        out["micro_f1"].append(f1_score(yr, pred, average="micro"))
        out["subset_accuracy"].append(accuracy_score(yr, pred))
        out["hamming_loss"].append(hamming_loss(yr, pred))
    return {k: np.array(v) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--naive", type=int, default=100, help="resamples the naive loop is timed on")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    patients, y, s, t = fold_ten()
    t0 = time.perf_counter()
    weights, kept = patient_weights(patients, y, args.resamples, seed=0)
    draw_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours, _ = bootstrap_figures(y, s, t, weights)
    ours_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    theirs = naive(y, s, t, weights[: args.naive])
    naive_s = (time.perf_counter() - t0) * args.resamples / args.naive
    for k in TESTED:
        np.testing.assert_allclose(ours[k][: args.naive], theirs[k], atol=1e-10)
    lines = [
        f"One model's {args.resamples:,} patient resamples at fold-10 size ({len(y):,} records, "
        f"{len(np.unique(patients)):,} patients, {y.shape[1]} classes, two of them with 2 positives); the five "
        f"tested figures per resample, identical in both (checked to 1e-10). {machine()}.",
        "",
        "| bootstrap | time | speed-up |",
        "| --- | ---: | ---: |",
        f"| naive: records drawn per resample, scikit-learn's metrics ({args.naive} timed, scaled) | {naive_s:.1f} s | 1.0x |",
        f"| ecg-crnn: weighted figures, vectorized over resamples | {ours_s:.2f} s | {naive_s / ours_s:.0f}x |",
        "",
        f"Drawing the {args.resamples:,} patient resamples (rejecting those that lose a class): {draw_s:.2f} s, once per "
        "study (the bootstrap stage).",
        "",
        "Run: `python benchmarks/bench_bootstrap.py --write`",
    ]
    report = "\n".join(lines)
    print(report)
    if args.write:
        write_section("Patient bootstrap of one model", report)


if __name__ == "__main__":
    main()
