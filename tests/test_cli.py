"""The command line explains itself."""

import pandas as pd
import pytest

from ecg_crnn import __version__
from ecg_crnn.cli import build_parser, main

from .helpers.paths import REPO


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"ecg-crnn {__version__}"


def _subcommands():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sub.choices


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_every_option_has_help_and_shows_its_default(name):
    parser = _subcommands()[name]
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            assert action.help, f"{name} {action.option_strings}: no help"
    text = parser.format_help()
    for action in parser._actions:
        if (
            action.option_strings
            and action.default not in (None, False, "==SUPPRESS==")
            and action.dest != "help"
        ):
            assert f"(default: {action.default})" in " ".join(text.split()), (name, action.dest)
    assert "(default: None)" not in text and "(default: False)" not in text
    for line in text.splitlines():
        assert line.count("(default:") <= 1, (name, line)


@pytest.mark.parametrize(
    ("flag", "says"),
    [
        (["--window", "5"], "--window 5: not in study.windows (2.5, 10)"),
        (["--seed", "7"], "--seed 7: not in train.seeds"),
    ],
)
def test_predict_names_a_window_or_seed_the_study_does_not_have(tmp_path, capsys, flag, says):
    assert main(["--params", str(REPO / "params.yaml"), "predict", str(tmp_path / "rec"), *flag]) == 1
    assert says in capsys.readouterr().err


def test_global_options_work_after_the_subcommand(tmp_path, write_params):
    params = write_params({"filter.task": "nonsense"})
    before = main(["--params", str(params), "segment", "--filtered", str(tmp_path)])
    after = main(["segment", "--filtered", str(tmp_path), "--params", str(params), "-q"])
    assert before == after == 1  # both read the bad parameters file, so both name its key
    args = build_parser().parse_args(["predict", "rec", "--params", "p.yaml", "-q"])
    assert str(args.params) == "p.yaml" and args.quiet


def test_report_html_escapes_names_from_the_csvs():
    from ecg_crnn.report.render import render_html
    from ecg_crnn.report.render import table_md as _table_md

    df = pd.DataFrame(
        {"family": ["<script>alert(1)</script>"], "classes": ["<img src=x onerror=alert(2)>|A"]}
    )
    html = render_html("# t\n\n" + _table_md(df) + "\n\nA class named <b>bold</b>.\n", {})
    assert "<script>" not in html and "<img src=x" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;b&gt;bold&lt;/b&gt;" in html


def _attributes_read(func) -> set[str]:
    """Every `args.NAME` a handler reads, found in its source (a handler that reads an option its parser never
    defines fails only when that command runs: the drift-predictions stage once did, at the end of a study)."""
    import inspect
    import re

    return set(re.findall(r"\bargs\.([A-Za-z_]\w*)", inspect.getsource(func)))


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_every_option_a_command_reads_is_one_its_parser_defines(name):
    parser = _subcommands()[name]
    func = parser.get_default("func")
    defined = {a.dest for a in parser._actions} | {"params", "quiet", "command", "func"}
    missing = _attributes_read(func) - defined
    assert not missing, f"{name}: {func.__name__} reads args.{', args.'.join(sorted(missing))}, never defined"


def test_the_check_of_options_read_finds_a_missing_one():
    def handler(args):
        return args.window, args.rotation

    assert _attributes_read(handler) == {"window", "rotation"}
