"""The report's robustness section: what each corruption costs each model, and whether recurrence or depth changes
it (the robustness question's hypotheses)."""

from __future__ import annotations

import pandas as pd

from ..analysis.compare import StudyResult
from .format import ci, signed

SOURCES = {
    "synthetic": "synthetic generators (robustness.noise_source is not set)",
    "nstdb": "the MIT-BIH Noise Stress Test Database (robustness.noise_source)",
}


def corruptions(st: StudyResult) -> list[str]:
    m = next(iter(st.models.values()))
    return [] if m.robustness is None else m.robustness.corruptions


def noise_sources(st: StudyResult) -> str:
    rob = next(iter(st.models.values())).robustness
    used = sorted({s for s in rob.source.values() if s != "none"})
    return "; ".join(SOURCES.get(s, s) for s in used) or "none needed"


def robustness_table(st: StudyResult) -> pd.DataFrame:
    """Per model and corruption: the primary macro-AUROC under it (mean over its severities) and its drop from the
    clean figure, mean of all seeds with 95% interval."""
    rows = []
    for m in sorted(st.models.values(), key=lambda m: (m.window, m.depth, m.rnn_type)):
        row = {"window": f"{m.window:g} s", "model": m.arch}
        for c in corruptions(st):
            row[f"{c}: drop"] = ci(st, m, f"drop:{c}")
        rows.append(row)
    return pd.DataFrame(rows)


def robustness_lines(st: StudyResult) -> list[str]:
    hs = st.group("robustness")
    if not hs:
        return []
    lines = []
    for w in st.windows:
        for kind, title in (
            ("recurrence", "the best recurrent model against the CNN"),
            ("depth", "the reference's deepest stack against one layer"),
        ):
            mine = [h for h in hs if h.name.startswith(f"robustness/{w:g}/") and h.name.endswith(f"/{kind}")]
            if not mine:
                continue
            parts = [f"{h.name.split('/')[2]} {h.verdict.wording} ({signed(h.difference)})" for h in mine]
            lines.append(
                f"- **Robustness**, {w:g} s, {title} ({mine[0].a} against {mine[0].b}; the difference of "
                f"their drops; [robustness]): " + "; ".join(parts) + "."
            )
    return lines
