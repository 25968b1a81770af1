"""Synthetic PTB-XL: the same files and layout as PhysioNet's (both CSVs, WFDB records, SHA256SUMS.txt),
with signals whose classes a CNN-RNN can really learn, and a planted answer to the study's question.

Each beat is a sum of Gaussian waves (P, Q, R, S, ST, T), each with its own 3-D heart-vector direction,
projected onto the 12 standard lead axes, so leads are related as in a real ECG. Every beat of a record is the
same template (nothing in P, QRS, T or amplitude depends on the intervals around it). Classes change the
signal in one of two ways, never both, so that a study on this data has a known answer:
- morphology, visible in any single beat (a CNN that sees one beat suffices): CLBBB widens the QRS, LVH
  raises it, IMI adds deep inferior Q waves, ISCAL depresses the ST segment, NDT inverts the T wave, 1AVB
  lengthens the PR interval;
- rhythm. Sinus rhythm (SR) beats steadily at 67-100 bpm. SVARR, BIGU and SARRH beat at 39-63 bpm (RR
  0.96-1.54 s), so "irregular" shows in any single interval, and they differ only in the ORDER of their
  intervals. Each repeats a cycle of 8 intervals that sums to exactly the record's 10 s: four short ones near
  1.0 s and four long ones near 1.5 s, each drawn in its own stratum of a 0.07 s band. The cycle starts at a
  uniformly random phase, so a record shows each interval of its cycle once (the one across its edges split in
  two): which intervals a record holds has one distribution in all three. BIGU alternates short and long;
  SARRH is one slow cycle, a run of short intervals and a run of long ones (S S L L L L S S from some phase),
  rising and falling gradually within each run; SVARR orders the cycle at random, in neither of those two
  patterns (so that no record is of two classes at once).

What the CNN front end cannot see: one step of its output sees `receptive_field()` = 98 input samples, 0.98 s
at 100 Hz (4 stride-1 convolutions of kernel 7, a max-pool of 2 after each of the first 3), and a beat is
visible from `beat_support()` = 0.38 s before its R peak (the P wave of a long PR) to 0.52 s after (the end of
the T wave), each wave counted to 4 sigma (where the P and T waves that bound it fall under the records' 1 uV
step). Any two successive
irregular intervals sum to at least 1.93 s > 0.98 + 0.90 s, so no field touches three beats: each sees at most
one interval, whose distribution is the same in all three rhythms, and so is the multiset of intervals a
record holds. Mean and max pooling over such fields, over a whole 10 s record, tell "irregular" from regular
but not which of the three; that takes a model that relates one interval to the next. A window shorter than the
cycle, though, holds some of its intervals, and which ones depends on the order (a 2.5 s window, about two
successive intervals, that holds two long ones is never BIGU): at 2.5 s pooling over the window and the max over
windows tell the three apart in part, and recurrence, which sees the same two intervals, adds little; at 10 s
it sees the whole cycle while the CNN sees none of its order. So the value of recurrence grows with context.
(All of this holds for the front end at its default kernel and depth, at 100 Hz; a wider kernel widens the
field, 500 Hz narrows it.)
Unlike PTB-XL, whose rhythm statements are not diagnostic, the synthetic statements table marks these three
as diagnostic (superclass `rhythm`), so the default subdiagnostic task keeps them.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..atomic import atomic_dir
from ..errors import EcgCrnnError
from .checksums import SUMS_NAME, format_sums
from .leads import LEADS
from .ptbxl import DATABASE_CSV, STATEMENTS_CSV

DURATION_S = 10
# Written into every synthetic dataset: synth replaces only a folder that holds it (or a new or empty one).
MARKER = ".ecg-crnn-synthetic"
GAIN = 1000.0  # adu per mV, as in PTB-XL

# code: (description, diagnostic, form, rhythm, diagnostic_class, diagnostic_subclass), as PTB-XL's table
# (the three irregular rhythms are diagnostic here, superclass `rhythm`: see the module docstring).
STATEMENTS = {
    "NORM": ("normal ECG", 1, None, None, "NORM", "NORM"),
    "IMI": ("inferior myocardial infarction", 1, None, None, "MI", "IMI"),
    "LVH": ("left ventricular hypertrophy", 1, None, None, "HYP", "LVH"),
    "CLBBB": ("complete left bundle branch block", 1, None, None, "CD", "CLBBB"),
    "1AVB": ("first degree AV block", 1, None, None, "CD", "_AVB"),
    "ISCAL": ("ischemic in anterolateral leads", 1, None, None, "STTC", "ISCA"),
    "NDT": ("non-diagnostic T abnormalities", 1, 1, None, "STTC", "STTC"),
    "SR": ("sinus rhythm", None, None, 1, None, None),
    "SVARR": ("supraventricular arrhythmia", 1, None, 1, "rhythm", "SVARR"),
    "BIGU": ("bigeminal pattern", 1, None, 1, "rhythm", "BIGU"),
    "SARRH": ("sinus arrhythmia", 1, None, 1, "rhythm", "SARRH"),
}
MORPHOLOGY = ("IMI", "LVH", "CLBBB", "1AVB", "ISCAL", "NDT")
MORPHOLOGY_P = np.array([0.18, 0.17, 0.16, 0.16, 0.17, 0.16])
RHYTHMS = ("SR", "SVARR", "BIGU", "SARRH")
RHYTHM_P = np.array([0.25, 0.25, 0.25, 0.25])
# Sinus rhythm: a steady rate, each interval (1 + N(0, SR_JITTER)) times the record's own.
SR_RR_S = (0.6, 0.9)  # 67-100 bpm
SR_JITTER = 0.015
# The irregular rhythms: a cycle of IRREGULAR_BEATS intervals summing to DURATION_S (mean RR 1.25 s, 48 bpm),
# half of them short and half long, each half stratified over IRREGULAR_BAND_S around its level. Any two
# intervals sum to at least 1.93 s, more than the front end's field plus a beat's extent (0.98 + 0.90 s; see the
# module docstring), so that no field sees two intervals. (Faster would break that; an odd count could not
# alternate around its cycle. Two distinct levels, 0.5 s apart, are what a small recurrent model learns to
# compare within a short training run: over an even spread of intervals it did not, in 10 epochs.)
IRREGULAR_BEATS = 8
IRREGULAR_RR_S = (1.0, 1.5)
IRREGULAR_BAND_S = 0.07
PR_S = (0.12, 0.17)
PR_1AVB_S = (0.22, 0.28)
TAIL_SIGMAS = 4.0  # beyond 4 sigma a P or T wave is under e^-8 of its peak (< 0.3 uV): below the 1 uV step
DEVICES = ("CS-12   E", "AT-6 C 5.5", "CS100    3", "AT-60    3", "AT-6     6")
DATABASE_COLUMNS = [
    "ecg_id",
    "patient_id",
    "age",
    "sex",
    "height",
    "weight",
    "nurse",
    "site",
    "device",
    "recording_date",
    "report",
    "scp_codes",
    "heart_axis",
    "infarction_stadium1",
    "infarction_stadium2",
    "validated_by",
    "second_opinion",
    "initial_autogenerated_report",
    "validated_by_human",
    "baseline_drift",
    "static_noise",
    "burst_noise",
    "electrodes_problems",
    "extra_beats",
    "pacemaker",
    "strat_fold",
    "filename_lr",
    "filename_hr",
]


def _lead_axes() -> np.ndarray:
    """(12, 3) unit vectors: frontal-plane limb leads (x left, y down) and horizontal-plane chest leads."""
    frontal = {"I": 0, "II": 60, "III": 120, "AVR": -150, "AVL": -30, "AVF": 90}
    axes = [(np.cos(np.radians(a)), np.sin(np.radians(a)), 0.0) for a in frontal.values()]
    for a in (120, 100, 80, 60, 30, 0):  # V1..V6 sweep from right-anterior to left-lateral
        axes.append((np.cos(np.radians(a)), 0.15, np.sin(np.radians(a))))
    return np.array(axes)


AXES = _lead_axes()
# wave: (offset from R in s, width sigma in s, amplitude in mV, heart-vector direction x, y, z)
WAVES = {
    "Q": (-0.030, 0.010, -0.10, (0.3, 0.9, 0.1)),
    "R": (0.000, 0.012, 1.10, (0.6, 0.7, 0.35)),
    "S": (0.035, 0.012, -0.35, (0.2, 0.3, 0.9)),
    "ST": (0.150, 0.060, 0.00, (0.6, 0.3, 0.7)),
    "T": (0.300, 0.055, 0.32, (0.6, 0.6, 0.4)),
}
P_WAVE = (0.025, 0.14, (0.5, 0.85, 0.1))  # sigma, amplitude, direction


@dataclass(frozen=True)
class SynthRecord:
    ecg_id: int
    codes: dict[str, float]


def _unit(v) -> np.ndarray:
    v = np.asarray(v, float)
    return v / np.linalg.norm(v)


def draw_codes(rng: np.random.Generator) -> dict[str, float]:
    """A record's statements: one rhythm, and NORM or one or two morphology diagnoses. NORM only with sinus
    rhythm: an irregular rhythm is itself a diagnostic label here."""
    rhythm = RHYTHMS[rng.choice(len(RHYTHMS), p=RHYTHM_P)]
    diagnoses: list[str] = []
    if rng.random() >= 0.45:
        k = 1 if rng.random() < 0.7 else 2
        diagnoses = [str(d) for d in rng.choice(MORPHOLOGY, size=k, replace=False, p=MORPHOLOGY_P)]
    elif rhythm == "SR":
        diagnoses = ["NORM"]
    codes = {d: float(rng.choice([50.0, 80.0, 100.0])) for d in diagnoses}
    codes[rhythm] = 0.0 if rhythm == "SR" else 100.0
    return codes


# ---- what the CNN front end sees -------------------------------------------------------------------------


def receptive_field(kernel_size: int = 7, blocks: int = 4, downsample_blocks: int = 3) -> int:
    """Input samples that one output step of the CNN front end (models.FrontEnd) depends on: `blocks`
    stride-1 convolutions of `kernel_size`, the first `downsample_blocks` each followed by a max-pool of 2."""
    field, step = 1, 1
    for i in range(blocks):
        field += (kernel_size - 1) * step
        if i < downsample_blocks:
            field += step  # a pool of 2 adds one step of the current resolution, then doubles it
            step *= 2
    return field


def waves(codes: dict[str, float]) -> dict[str, list]:
    """The beat's waves (offset, sigma, amplitude, direction) as this record's diagnoses change them."""
    w = {k: list(v) for k, v in WAVES.items()}
    if "CLBBB" in codes:
        w["R"][1] *= 2.2
        w["S"][0] += 0.03
        w["S"][1] *= 1.8
        w["R"][3] = (0.8, 0.4, 0.0)
    if "LVH" in codes:
        w["R"][2] *= 2.0
        w["S"][2] *= 1.8
    if "IMI" in codes:
        w["Q"][2] = -0.5  # about half the R wave, over 40 ms: a pathological Q wave
        w["Q"][1] = 0.02
        w["Q"][3] = (0.0, 1.0, 0.0)
    if "ISCAL" in codes:
        w["ST"][2] = -0.1
    if "NDT" in codes:
        w["T"][2] = -0.08
    return w


def beat_support() -> tuple[float, float]:
    """(first, last) time (s) relative to its R peak at which a beat of any diagnosis is visible, each wave
    counted to TAIL_SIGMAS: (-0.38, 0.52), from the P wave of the longest PR to the end of the T wave."""
    first = -max(PR_1AVB_S) - TAIL_SIGMAS * P_WAVE[0]
    last = -np.inf
    for code in ("NORM", *MORPHOLOGY):
        for offset, sigma, amp, _ in waves({code: 100.0}).values():
            if amp:
                first = min(first, offset - TAIL_SIGMAS * sigma)
                last = max(last, offset + TAIL_SIGMAS * sigma)
    return float(first), float(last)


# ---- rhythm: where the beats fall ------------------------------------------------------------------------


def irregular_cycle(rhythm: str, rng: np.random.Generator) -> np.ndarray:
    """One cycle of an irregular rhythm: IRREGULAR_BEATS RR intervals (s) that sum to exactly DURATION_S, half
    near each of the two IRREGULAR_RR_S levels (one drawn in each equal stratum of its band, so every cycle holds
    the same spread), ordered as the rhythm orders them. The three share everything but the order."""
    m = IRREGULAR_BEATS
    strata = (np.arange(m // 2) + rng.random((2, m // 2))) / (m // 2) - 0.5  # one per stratum, sorted
    rr = (np.asarray(IRREGULAR_RR_S)[:, None] + IRREGULAR_BAND_S * strata).ravel()  # short half, long half
    rr += DURATION_S / m - rr.mean()  # the period is exactly the record's length
    # SVARR: at random, but in neither BIGU's pattern nor SARRH's, so that no record is of two classes at once:
    # more than 2 changes between short and long around the cycle, fewer than m.
    while rhythm == "SVARR":
        order = rng.permutation(m)
        is_long = order >= m // 2
        if 2 < np.sum(is_long != np.roll(is_long, 1)) < m:
            return rr[order]
    if rhythm == "BIGU":  # shorter half and longer half alternate, each half in random order
        return np.column_stack([rng.permutation(rr[: m // 2]), rng.permutation(rr[m // 2 :])]).ravel()
    if rhythm == "SARRH":  # up through every other stratum, back down through the others
        return np.concatenate([rr[0::2], rr[1::2][::-1]])
    raise ValueError(f"not an irregular rhythm: {rhythm!r}")


def beat_times(rhythm: str, rng: np.random.Generator) -> np.ndarray:
    """R-peak times (s) of a record, including the beats just outside it whose waves reach into it.

    Sinus rhythm: a steady rate with the small beat-to-beat variation of SR. An irregular rhythm repeats its
    cycle, whose period is the record's length, from a uniformly random phase: each record holds every interval
    of its cycle once, the one across the record's start and end split in two, in whichever rhythm."""
    lo, hi = -0.6, DURATION_S + 0.6  # beyond these a beat is invisible (beat_support)
    if rhythm == "SR":
        rr0 = rng.uniform(*SR_RR_S)
        n = int((hi - lo) / (0.5 * rr0)) + 2
        rr = rr0 * (1 + rng.normal(0, SR_JITTER, n))
        t = lo - rng.uniform(0, rr0) + np.concatenate([[0.0], np.cumsum(rr)])
    else:
        rr = np.tile(irregular_cycle(rhythm, rng), 3)
        t = np.concatenate([[0.0], np.cumsum(rr)]) - DURATION_S - rng.uniform(0, DURATION_S)
    return t[(t > lo) & (t < hi)]


@dataclass(frozen=True)
class Acquisition:
    """How a record was acquired: a shifted fold records louder, noisier, more wandering signals."""

    gain: float = 1.0
    noise_mv: float = 0.03
    wander_mv: float = 0.15


SHIFTED = Acquisition(gain=1.35, noise_mv=0.045, wander_mv=0.45)


def _templates(codes: dict[str, float], fs: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """This record's QRS-T and P templates, (12, 2 * half) each, centred on the R peak and the P peak: waves
    modified by its diagnoses, with individual variation."""
    scale = rng.uniform(0.8, 1.2)
    half = int(0.55 * fs)
    tt = np.arange(-half, half) / fs
    qrst = np.zeros((12, tt.size))
    for offset, sigma, amp, direction in waves(codes).values():
        if amp == 0:
            continue
        d = _unit(np.asarray(direction) + rng.normal(0, 0.1, 3))
        # Each wave varies on its own between records, so that no class is read off exact wave ratios.
        shape = amp * scale * rng.uniform(0.75, 1.25) * np.exp(-0.5 * ((tt - offset) / sigma) ** 2)
        qrst += np.outer(AXES @ d, shape)
    p_sigma, p_amp, p_dir = P_WAVE
    p_wave = np.outer(AXES @ _unit(p_dir), p_amp * np.exp(-0.5 * (tt / p_sigma) ** 2))
    return qrst, p_wave


def render(
    codes: dict[str, float], fs: int, rng: np.random.Generator, acq: Acquisition = Acquisition()
) -> np.ndarray:
    """One 10 s, 12-lead record in mV, shape (12, fs * 10)."""
    n = fs * DURATION_S
    rhythm = next(c for c in codes if c in RHYTHMS)
    times = beat_times(rhythm, rng)
    pr = rng.uniform(*(PR_1AVB_S if "1AVB" in codes else PR_S))
    qrst, p_wave = _templates(codes, fs, rng)
    half = qrst.shape[1] // 2
    # Padded by a template's width on each side, so beats that straddle the record's edges fit.
    x = np.zeros((12, n + 4 * half))
    for r in times:
        i = int(round(r * fs)) + half
        if 0 < i < n + 2 * half:
            x[:, i : i + 2 * half] += qrst
        j = int(round((r - pr) * fs)) + half
        if 0 < j < n + 2 * half:
            x[:, j : j + 2 * half] += p_wave
    x = x[:, 2 * half : 2 * half + n]
    time = np.arange(n) / fs
    x *= acq.gain
    wander = rng.uniform(0, acq.wander_mv) * np.sin(
        2 * np.pi * rng.uniform(0.05, 0.4) * time + rng.uniform(0, 6.3)
    )
    x += wander * rng.uniform(0.3, 1.0, (12, 1))
    x += rng.normal(0, acq.noise_mv, x.shape)
    return x


def _record_name(ecg_id: int, fs: int) -> str:
    suffix = "lr" if fs == 100 else "hr"
    return f"records{fs}/{ecg_id // 1000 * 1000:05d}/{ecg_id:05d}_{suffix}"


def wfdb_files(name: str, signal_mv: np.ndarray, fs: int) -> tuple[bytes, bytes]:
    """(.hea, .dat) bytes of one format-16 record, laid out exactly as PTB-XL's."""
    digital = np.clip(np.round(signal_mv * GAIN), -32768, 32767).astype("<i2")
    base = name.rsplit("/", 1)[1]
    checksums = digital.astype(np.int64).sum(axis=1) % 65536
    lines = [f"{base} {len(LEADS)} {fs} {digital.shape[1]}"]
    for lead, first, checksum in zip(LEADS, digital[:, 0], checksums, strict=True):
        lines.append(f"{base}.dat 16 {GAIN:.1f}(0)/mV 16 0 {int(first)} {int(checksum)} 0 {lead}")
    return ("\n".join(lines) + "\n").encode(), digital.T.tobytes()


def _database(records: list[SynthRecord], rng: np.random.Generator, folds: np.ndarray, patients: np.ndarray):
    n = len(records)
    rows = {
        "ecg_id": [r.ecg_id for r in records],
        "patient_id": patients.astype(float),
        "age": np.clip(rng.normal(60, 17, n).round(), 18, 95),
        "sex": rng.integers(0, 2, n),
        "height": np.where(rng.random(n) < 0.3, rng.normal(167, 10, n).round(), np.nan),
        "weight": np.where(rng.random(n) < 0.4, rng.normal(72, 14, n).round(), np.nan),
        "nurse": rng.integers(0, 12, n).astype(float),
        "site": rng.integers(0, 50, n).astype(float),
        "device": rng.choice(DEVICES, n),
        "recording_date": pd.to_datetime(
            rng.integers(
                pd.Timestamp("1984-01-01").value // 10**9, pd.Timestamp("2001-12-31").value // 10**9, n
            ),
            unit="s",
        ).strftime("%Y-%m-%d %H:%M:%S"),
        "report": [" ".join(STATEMENTS[c][0] for c in r.codes) for r in records],
        "scp_codes": [str(r.codes) for r in records],
        "validated_by_human": rng.random(n) < 0.73,
        "strat_fold": folds,
        "filename_lr": [_record_name(r.ecg_id, 100) for r in records],
        "filename_hr": [_record_name(r.ecg_id, 500) for r in records],
    }
    df = pd.DataFrame(rows)
    for col in DATABASE_COLUMNS:
        if col not in df:
            df[col] = False if col in ("second_opinion", "initial_autogenerated_report", "pacemaker") else ""
    return df[DATABASE_COLUMNS]


def _statements() -> pd.DataFrame:
    df = pd.DataFrame.from_dict(
        STATEMENTS,
        orient="index",
        columns=["description", "diagnostic", "form", "rhythm", "diagnostic_class", "diagnostic_subclass"],
    )
    for col in (
        "Statement Category",
        "SCP-ECG Statement Description",
        "AHA code",
        "aECG REFID",
        "CDISC Code",
        "DICOM Code",
    ):
        df[col] = df["description"] if col == "SCP-ECG Statement Description" else ""
    return df


def _check_args(n_records: int, rates: tuple[int, ...], shift_fold: int | None) -> None:
    if shift_fold is not None and not 1 <= shift_fold <= 10:
        raise EcgCrnnError(f"synth: --shift-fold must be in 1..10, got {shift_fold}")
    if n_records < 10:
        raise EcgCrnnError(f"synth: --records must be at least 10 (one per fold), got {n_records}")
    bad = [r for r in rates if r not in (100, 500)]
    if bad:
        raise EcgCrnnError(f"synth: sampling rate {bad[0]} is not 100 or 500")


def replaceable(out_dir: Path) -> Path:
    """`out_dir`, resolved, if synth may replace it whole: new, empty, or a synthetic dataset synth wrote (it holds
    MARKER). Anything else is refused with the reason: the current folder or one above it (`synth .` would swap
    the working directory itself away), a file, a folder with other files."""
    resolved = out_dir.resolve()
    here = Path.cwd().resolve()
    if resolved == here or resolved in here.parents:
        raise EcgCrnnError(
            f"synth: {out_dir} is the current folder{'' if resolved == here else ' or one above it'}; synth writes "
            "a whole dataset folder and replaces it in one step, which would swap out everything in it: give a "
            "new folder, e.g. `ecg-crnn synth data/synthetic`"
        )
    if resolved.exists() and not resolved.is_dir():
        raise EcgCrnnError(f"synth: {out_dir} exists and is not a folder")
    marker = resolved / MARKER
    if resolved.is_dir() and any(resolved.iterdir()) and not (marker.is_file() and not marker.is_symlink()):
        raise EcgCrnnError(
            f"synth: {out_dir} already holds files and is not a synthetic dataset that synth wrote (no {MARKER} "
            "in it); synth replaces its output folder whole, so it writes only into a new or empty folder or over "
            "its own earlier output: give another folder"
        )
    return resolved


def write_synthetic(
    out_dir: Path,
    n_records: int,
    rates: tuple[int, ...] = (100,),
    seed: int = 0,
    progress: bool = True,
    shift_fold: int | None = None,
) -> dict:
    """Write a synthetic PTB-XL of `n_records` records into `out_dir` (replaced atomically).

    `shift_fold` makes one fold drift on purpose (older, heavier patients on one device; louder, noisier
    signals with more baseline wander), for testing drift detection."""
    _check_args(n_records, rates, shift_fold)
    out_dir = replaceable(Path(out_dir))
    rng = np.random.default_rng(seed)
    records = [SynthRecord(i + 1, draw_codes(rng)) for i in range(n_records)]
    # About 1.15 records per patient, as in PTB-XL; each patient's records share one fold.
    patients = np.sort(rng.integers(0, max(1, int(n_records / 1.15)), n_records)) + 1
    patient_fold = rng.integers(1, 11, patients.max() + 1)
    patient_fold[np.unique(patients)[:10]] = np.arange(1, 11)[: min(10, len(np.unique(patients)))]
    folds = patient_fold[patients]
    sums: dict[str, str] = {}
    with atomic_dir(out_dir) as tmp:
        db = _database(records, rng, folds, patients)
        shifted = db["strat_fold"].to_numpy() == shift_fold
        if shift_fold is not None:
            db.loc[shifted, "age"] = np.clip(db.loc[shifted, "age"] + 15, 18, 95)
            db.loc[shifted, "weight"] = db.loc[shifted, "weight"] + 12
            db.loc[shifted, "device"] = DEVICES[3]
        for name, frame, index in ((DATABASE_CSV, db, False), (STATEMENTS_CSV, _statements(), True)):
            data = frame.to_csv(index=index).encode()
            (tmp / name).write_bytes(data)
            sums[name] = hashlib.sha256(data).hexdigest()
        made_dirs: set[Path] = set()
        bar = tqdm(
            records, desc="synthesize", unit="rec", disable=not progress, mininterval=1.0, file=sys.stderr
        )
        for i, rec in enumerate(bar):
            rec_rng = np.random.default_rng([seed, rec.ecg_id])  # each record reproducible on its own
            acq = SHIFTED if shifted[i] else Acquisition()
            for fs in rates:
                name = _record_name(rec.ecg_id, fs)
                hea, dat = wfdb_files(name, render(rec.codes, fs, rec_rng, acq), fs)
                folder = (tmp / name).parent
                if folder not in made_dirs:
                    folder.mkdir(parents=True, exist_ok=True)
                    made_dirs.add(folder)
                for ext, data in ((".hea", hea), (".dat", dat)):
                    (tmp / (name + ext)).write_bytes(data)
                    sums[name + ext] = hashlib.sha256(data).hexdigest()
        (tmp / SUMS_NAME).write_text(format_sums(sums))
        (tmp / MARKER).write_text(
            "a synthetic PTB-XL written by ecg-crnn synth; synth may replace this folder\n"
        )
    return {"records": n_records, "rates": list(rates), "files": len(sums)}
