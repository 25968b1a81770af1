"""How numbers read in the report: figures, signed differences, p-values, counts."""

from __future__ import annotations

from ..analysis.compare import StudyResult
from ..analysis.results import Model

NAMES = {
    "macro_auroc": "macro-AUROC",
    "macro_auprc": "macro-AUPRC",
    "micro_f1": "micro-F1",
    "subset_accuracy": "subset accuracy",
    "hamming_loss": "Hamming loss",
}


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def fig(v: float) -> str:
    return f"{v:.4f}" if abs(v) < 0.1 else f"{v:.3f}"


def ci(st: StudyResult, m: Model, figure: str) -> str:
    lo, hi = st.interval(m.key, figure)
    return f"{fig(st.point(m.key, figure))} [{fig(lo)}, {fig(hi)}]"


def ci_headline(st: StudyResult, m: Model, figure: str) -> str:
    """ci() of a chosen model on its confirmation seeds (StudyResult.headline)."""
    x = st.headline(m.key, figure)
    return f"{fig(x.point)} [{fig(x.interval.lo)}, {fig(x.interval.hi)}]"


def p_value(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def signed(v: float) -> str:
    """A signed difference: 4 decimals below 0.01, and never "-0.000" (rounding to zero drops the sign)."""
    digits = 4 if abs(v) < 0.01 else 3
    return f"{round(v, digits) + 0.0:+.{digits}f}"


def with_interval(t) -> str:
    return f"{signed(t.difference)} [{signed(t.lo)}, {signed(t.hi)}]"


def kilo(v: float) -> str:
    return f"{v / 1e3:.0f}k" if v >= 1e3 else f"{v:.0f}"
