"""Label aggregation on the complete PTB-XL 1.0.3 tables."""

import pandas as pd
import pytest

from ecg_crnn.data.ptbxl import aggregate_labels, load_database, load_statements
from ecg_crnn.errors import EcgCrnnError


@pytest.fixture(scope="module")
def tables(shared_ptbxl):
    return load_database(shared_ptbxl), load_statements(shared_ptbxl)


# Record and class counts of each task on the full 1.0.3 database (Strodthoff et al. 2020, Table 1).
@pytest.mark.parametrize(
    ("task", "records", "classes"),
    [
        ("subdiagnostic", 21388, 23),
        ("superdiagnostic", 21388, 5),
        ("diagnostic", 21388, 44),
        ("form", 8978, 19),
        ("rhythm", 21030, 12),
        ("all", 21799, 71),
    ],
)
def test_task_sizes_on_full_database(tables, task, records, classes):
    db, statements = tables
    assert len(db) == 21799
    labels = aggregate_labels(db, statements, task)
    labelled = labels[labels.map(len) > 0]
    assert len(labelled) == records
    assert len({c for ls in labelled for c in ls}) == classes


def test_likelihood_is_ignored_and_subclasses_mapped(tables):
    db, statements = tables
    labels = aggregate_labels(db, statements, "subdiagnostic")
    # ecg_id 1 is {'NORM': 100.0, 'LVOLT': 0.0, 'SR': 0.0}: LVOLT is form-only, SR rhythm-only.
    assert labels.loc[1] == ["NORM"]
    # ecg_id 263 is {'ASMI': 50.0, 'NST_': 0.0, 'STACH': 0.0}: NST_ counts although its likelihood is 0.
    assert db.loc[263, "scp_codes"]["NST_"] == 0.0
    assert labels.loc[263] == ["AMI", "NST_"]


def test_missing_required_column_is_named(tmp_path, shared_ptbxl):
    db = pd.read_csv(shared_ptbxl / "ptbxl_database.csv").drop(columns=["scp_codes"])
    db.to_csv(tmp_path / "ptbxl_database.csv", index=False)
    with pytest.raises(EcgCrnnError, match=r"ptbxl_database\.csv: missing required column\(s\) 'scp_codes'"):
        load_database(tmp_path)


def test_database_without_records_is_named(tmp_path, shared_ptbxl):
    header_row = (shared_ptbxl / "ptbxl_database.csv").read_text().splitlines()[0]
    (tmp_path / "ptbxl_database.csv").write_text(header_row + "\n")
    with pytest.raises(EcgCrnnError, match=r"ptbxl_database\.csv: has no records"):
        load_database(tmp_path)
    (tmp_path / "ptbxl_database.csv").write_text("")
    with pytest.raises(EcgCrnnError, match=r"ptbxl_database\.csv: .*empty"):
        load_database(tmp_path)


def test_empty_database_stops_the_filter_stage_by_name(synthetic_copy, tmp_path, write_params, capsys):
    from ecg_crnn.cli import main

    db = synthetic_copy / "ptbxl_database.csv"
    db.write_text(db.read_text().splitlines()[0] + "\n")
    params = write_params({})
    raw, out = str(synthetic_copy), str(tmp_path / "f")
    assert main(["--params", str(params), "-q", "filter", "--raw", raw, "--out", out]) == 1
    assert f"{db}: has no records" in capsys.readouterr().err


# --- Hardening: a scp_codes cell is bounded before it is parsed ------------------------------------------


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        (
            "[" * 200_000 + "]" * 200_000,
            r"scp_codes is 400,000 characters long \('\[\[\[",
        ),  # nesting: recursion
        (
            "{" + ", ".join(f"'C{i}': 100.0" for i in range(50_000)) + "}",
            r"scp_codes is 838,890 characters long .*more than the 4,096",
        ),
        ("{'NORM': 'high'}", r"scp_codes \"\{'NORM': 'high'\}\" is not a dict literal of statement codes"),
        ("{1: 100.0}", r"scp_codes '\{1: 100.0\}' is not a dict literal of statement codes"),
        ("__import__('os')", r"scp_codes \"__import__\('os'\)\" is not a dict literal"),
    ],
)
def test_a_bad_scp_codes_cell_is_refused_by_ecg_id(
    synthetic_copy, tmp_path, write_params, capsys, cell, message
):
    from ecg_crnn.cli import main

    path = synthetic_copy / "ptbxl_database.csv"
    db = pd.read_csv(path)
    db["scp_codes"] = db["scp_codes"].astype(object)
    db.loc[db["ecg_id"] == 7, "scp_codes"] = cell
    db.to_csv(path, index=False)
    with pytest.raises(EcgCrnnError, match=rf"ptbxl_database\.csv: ecg_id 7: {message}"):
        load_database(synthetic_copy)
    params = write_params({})
    args = [
        "--params",
        str(params),
        "-q",
        "filter",
        "--raw",
        str(synthetic_copy),
        "--out",
        str(tmp_path / "f"),
    ]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "ecg_id 7: scp_codes" in err and "Traceback" not in err
