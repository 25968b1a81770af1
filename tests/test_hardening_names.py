"""Names from the data cannot inject anything: a class, lead or device named with a script payload does not
execute in the drift reports (their scripts equal those of a run with plain names), and hostile class, family,
task and source names add no image, link or markup to the study report."""

import json
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from ecg_crnn import drift as drift_module
from ecg_crnn.analysis.compare import analyse
from ecg_crnn.config import DriftSettings
from ecg_crnn.drift import index_html, renamed_columns, run_report
from ecg_crnn.markup import md_escape, safe_names
from ecg_crnn.report.render import drift_section, render_html, report_markdown
from ecg_crnn.report.sentences import RunInfo

from .test_compare import grid, params

PAYLOAD = "</script><script>document.title='pwned'</script>"
COMMENT = "<!--<script>"


def test_ptbxl_names_pass_unchanged_and_others_get_distinct_plain_identifiers():
    real = ["LAFB/LPFB", "_AVB", "NST_", "ISC_", "LAO/LAE", "V1", "AVR", "CS-12   E", "AT-6 C 5.5"]
    assert safe_names(real) == {n: n for n in real}
    hostile = [PAYLOAD, COMMENT, "a<b", "a>b", "", "x_a_b_1", "ünïcode", "x" * 100]
    shown = safe_names(hostile)
    assert len(set(shown.values())) == len(hostile)  # distinct, also from the plain name "x_a_b_1"
    assert all(re.fullmatch(r"[A-Za-z0-9_]+", v) for k, v in shown.items() if k != "x_a_b_1")


def _scripts(path) -> list[str]:
    """The page's script blocks as a browser's parser splits them, with Evidently's random ids made equal."""
    text = path.read_text()
    ids = r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}"  # uuids, with or without dashes
    return [re.sub(ids, "ID", s) for s in re.findall(r"<script[^>]*>(.*?)</script>", text, re.S)]


def _frames() -> tuple[pd.DataFrame, pd.DataFrame, list[str], list[str]]:
    """Two samples whose lead and class names and device values carry a script payload."""
    rng = np.random.default_rng(0)
    n = 120
    frame = pd.DataFrame(
        {
            "amplitude_II": rng.normal(1, 0.2, 2 * n),
            f"amplitude_{PAYLOAD}": rng.normal(1, 0.2, 2 * n),
            f"label_{COMMENT}": rng.choice(["0", "1"], 2 * n),
            "device": rng.choice(["CS-12   E", PAYLOAD], 2 * n),
        }
    )
    numeric, categorical = ["amplitude_II", f"amplitude_{PAYLOAD}"], [f"label_{COMMENT}", "device"]
    return frame.iloc[:n], frame.iloc[n:].reset_index(drop=True), numeric, categorical


def _with_clean_names(ref, cur, numeric, categorical):
    """The same data under the plain names the report shows: what a run with clean names would give."""
    names = safe_names(numeric + categorical)
    values = safe_names(["CS-12   E", PAYLOAD])
    ref, cur = (f.assign(device=f["device"].map(values)).rename(columns=names) for f in (ref, cur))
    return ref, cur, [names[c] for c in numeric], [names[c] for c in categorical]


def test_a_script_payload_in_names_and_values_does_not_run_in_the_drift_report(tmp_path, monkeypatch):
    cfg = DriftSettings(method="tests")
    hostile = _frames()
    result = run_report(*hostile, cfg, tmp_path / "hostile.html")
    run_report(*_with_clean_names(*hostile), cfg, tmp_path / "clean.html")
    assert all(re.fullmatch(r"[A-Za-z0-9_ ]+", c) for c in _with_clean_names(*hostile)[0].columns)
    assert _scripts(tmp_path / "hostile.html") == _scripts(tmp_path / "clean.html")
    assert "pwned" not in (tmp_path / "hostile.html").read_text()
    # The summary keeps the real names, and says what each is shown as.
    columns = {c["column"]: c for c in result["all"]}
    assert set(columns) == {"amplitude_II", f"amplitude_{PAYLOAD}", f"label_{COMMENT}", "device"}
    assert columns[f"amplitude_{PAYLOAD}"]["shown_as"].startswith("x_amplitude_")
    assert "shown_as" not in columns["amplitude_II"]
    # Negative control: with names passed through unchanged, the comparison does see the payload.
    monkeypatch.setattr(drift_module, "safe_names", lambda names: {str(n): str(n) for n in names})
    run_report(*hostile, cfg, tmp_path / "raw.html")
    assert _scripts(tmp_path / "raw.html") != _scripts(tmp_path / "clean.html")


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_the_drift_index_shows_a_legend_of_renamed_columns_escaped():
    renamed = renamed_columns(["amplitude_II", f"label_{PAYLOAD}"])
    assert list(renamed) == [f"label_{PAYLOAD}"]
    summary = {
        "fold_10": {
            "role": "test",
            "records": 5,
            "drifted_columns": 1,
            "columns": 2,
            "drift_share": 0.5,
            "dataset_drift": True,
            "most_drifted": {f"label_{PAYLOAD}": 0.01},
        }
    }
    parser = _Tags()
    parser.feed(index_html(summary, renamed))
    assert [t for t, _ in parser.tags].count("script") == 0
    assert f"label_{PAYLOAD}" in "".join(parser.text)  # shown as text, in the table and the legend


HOSTILE_CLASSES = [
    "![b](https://evil.example/beacon.png)",
    "[click](https://evil.example/)",
    "<img src=https://evil.example/x.png>",
    "www.evil.example `x` **y** _z_ a|b\n# heading",
]
HOSTILE_FAMILIES = [
    "<script>alert(1)</script>",
    "<script>alert(1)</script>",
    "![f](http://evil.example/f.png)",
    "![f](http://evil.example/f.png)",
]


def test_hostile_names_add_no_image_link_or_markup_to_the_study_report(tmp_path):
    models = grid(
        {("cnn", 2.5): (0.9, 0.9), ("cnn_lstm1", 2.5): (0.91, 0.91), ("cnn_lstm3", 2.5): (0.9, 0.9)}
    )
    for m in models.values():
        m.per_class["class"], m.per_class["family"] = HOSTILE_CLASSES, HOSTILE_FAMILIES
        m.per_class.loc[0, "test_positives"] = 3  # named in the "fewer than 5 positives" sentence
    st = analyse(models, params(windows=[2.5]))
    info = RunInfo(
        "https://alice:hunter2@mirror.example/ptb-xl/",
        "[t](https://evil.example/)",
        100,
        {"train": 380, "val": 50, "test": 66},
        4,
    )
    drift_dir = tmp_path / "drift"
    drift_dir.mkdir()
    (drift_dir / "summary.json").write_text(
        json.dumps(
            {
                f"fold_{HOSTILE_CLASSES[0]}": {
                    "role": HOSTILE_CLASSES[2],
                    "records": 5,
                    "drifted_columns": 1,
                    "columns": 2,
                    "dataset_drift": False,
                }
            }
        )
    )
    md = report_markdown(st, info, drift_section(drift_dir, None))
    assert "hunter2" not in md
    assert "https://evil" not in md and "www.evil" not in md  # nothing a GFM viewer would autolink
    parser = _Tags()
    parser.feed(render_html(md, {}))
    for tag, attrs in parser.tags:
        assert tag not in ("script", "iframe"), tag
        for value in attrs.values():
            assert "evil" not in (value or ""), (tag, attrs)
    srcs = [a["src"] for t, a in parser.tags if t == "img"]
    assert srcs and all(s.startswith("plots/") for s in srcs)  # only the report's own figures
    assert [a["href"] for t, a in parser.tags if t == "a"] == ["../drift/index.html"]
    text = "".join(parser.text)
    for name in [*HOSTILE_CLASSES[:3], HOSTILE_FAMILIES[0]]:
        assert name in text  # each reads as itself
    assert "www.evil.example `x` **y** _z_ a|b # heading" in text  # on one line; no heading made


@pytest.mark.parametrize("name", [*HOSTILE_CLASSES, "$\\frac{$", "a,b; c"])
def test_md_escape_reads_back_as_the_name(name):
    from markdown_it import MarkdownIt

    html = MarkdownIt("commonmark", {"html": False}).render(md_escape(name))
    parser = _Tags()
    parser.feed(html)
    assert [t for t, _ in parser.tags] == ["p"]
    assert "".join(parser.text).strip() == " ".join(name.split())
