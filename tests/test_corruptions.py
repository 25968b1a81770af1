"""The robustness corruptions do what their severities say, exactly, and the same way however a fold is cut.

Signals are synthetic 12-lead ECGs (ecg_crnn.data.synthetic.render) with a DC offset added to some leads,
so a signal power that wrongly counted the offset would show. Every property is measured here with its own
computation in float64, never with the functions that produce the corruption.
"""

import math

import numpy as np
import pytest
import yaml
from scipy import signal as sps
from scipy import stats

from ecg_crnn.data.synthetic import LEADS, render
from ecg_crnn.errors import EcgCrnnError
from ecg_crnn.robustness import (
    DEFAULT_PARAMS,
    REGISTRY,
    corrupt,
    describe,
    parse_plan,
    registry,
    zero_lost_leads,
)
from ecg_crnn.robustness.powerline import SOURCE_FS

SNR_TOLERANCE_DB = 0.01  # float32 rounding of the output moves the SNR by ~1e-5 dB; severities are 6 dB apart
NOISES = ("gaussian", "baseline_wander", "electrode_motion", "muscle")
DIRTY = {  # one non-clean severity per corruption
    "gaussian": 12,
    "baseline_wander": 12,
    "electrode_motion": 12,
    "muscle": 12,
    "powerline50": 12,
    "powerline60": 12,
    "lead_loss_random": 3,
    "limb_leads_only": 1,
    "lead_I_only": 1,
    "gain": 2.0,
    "time_shift": 0.5,
}


def _fold(fs: int, n: int, seed: int):
    rng = np.random.default_rng(seed)
    x = np.stack([render({"SR": 100.0}, fs, rng) for _ in range(n)])
    x[:, [0, 7]] += 0.4  # offsets in mV, which carry no signal power
    return x.astype(np.float32), 1000 + 7 * np.arange(n)  # ids: PTB-XL-like, not 0..n-1


@pytest.fixture(scope="module")
def fold100():
    return _fold(100, 40, 7)


@pytest.fixture(scope="module")
def fold500():
    return _fold(500, 8, 8)


def measured_snr_db(x, y):
    """Per record and lead: 10 log10(variance of x / mean square of what was added)."""
    x64, added = x.astype(np.float64), y.astype(np.float64) - x.astype(np.float64)
    p_signal = np.mean((x64 - x64.mean(axis=-1, keepdims=True)) ** 2, axis=-1)
    with np.errstate(divide="ignore"):
        return 10 * np.log10(p_signal / np.mean(added**2, axis=-1))


def power_share(noise, fs, low, high):
    """Per record and lead: the share of the noise's power between low and high Hz (periodogram)."""
    freqs = np.fft.rfftfreq(noise.shape[-1], 1 / fs)
    power = np.abs(np.fft.rfft(noise, axis=-1)) ** 2
    return power[..., (freqs >= low) & (freqs < high)].sum(-1) / power.sum(-1)


def added(x, name, severity, fs, seed=0, **kw):
    return corrupt(x[0], x[1], name, severity, seed=seed, fs=fs, **kw).x.astype(np.float64) - x[0]


@pytest.mark.parametrize("name", NOISES)
@pytest.mark.parametrize("snr", [24.0, 6.0, -6.0])
def test_every_lead_gets_the_asked_snr(fold100, name, snr):
    result = corrupt(*fold100, name, snr, seed=3, fs=100)
    assert result.source == "synthetic"
    np.testing.assert_allclose(measured_snr_db(fold100[0], result.x), snr, atol=SNR_TOLERANCE_DB)


@pytest.mark.parametrize("name", NOISES)
def test_snr_holds_at_500_hz(fold500, name):
    y = corrupt(*fold500, name, 6.0, seed=3, fs=500).x
    np.testing.assert_allclose(measured_snr_db(fold500[0], y), 6.0, atol=SNR_TOLERANCE_DB)


def test_per_record_snr_keeps_the_limb_lead_relations(fold100):
    """snr_per="record": one factor per record, so the noise keeps III = II - I; per lead it does not."""
    x = fold100[0].astype(np.float64)
    y = corrupt(*fold100, "muscle", 6.0, seed=0, fs=100, snr_per="record").x.astype(np.float64)
    p_signal = np.mean((x - x.mean(axis=-1, keepdims=True)) ** 2, axis=-1).mean(axis=1)
    p_noise = np.mean((y - x) ** 2, axis=-1).mean(axis=1)
    np.testing.assert_allclose(10 * np.log10(p_signal / p_noise), 6.0, atol=SNR_TOLERANCE_DB)
    assert np.ptp(measured_snr_db(fold100[0], y), axis=1).min() > 1.0  # per-lead SNRs do differ

    def einthoven_error(noise):
        return np.abs(noise[:, 2] - (noise[:, 1] - noise[:, 0])).max() / np.abs(noise[:, :3]).max()

    assert einthoven_error(y - x) < 1e-5
    assert einthoven_error(added(fold100, "muscle", 6.0, 100)) > 0.01  # negative control: per-lead scaling


def test_a_flat_lead_gets_no_noise(fold100):
    x = fold100[0].copy()
    x[:, 4] = 0.25  # a flat lead: no signal power, so no SNR to set
    y = corrupt(x, fold100[1], "gaussian", 6.0, seed=0, fs=100).x
    assert (y[:, 4] == 0.25).all()
    np.testing.assert_allclose(measured_snr_db(x[:, :4], y[:, :4]), 6.0, atol=SNR_TOLERANCE_DB)


def test_severities_scale_the_same_noise(fold100):
    """Common random numbers: at every severity a record gets the same waveform, only scaled."""
    for name in ("gaussian", "electrode_motion", "muscle"):
        low, high = added(fold100, name, 24.0, 100), added(fold100, name, 12.0, 100)
        big = np.abs(low) > 0.1 * np.abs(low).max()  # where float32 rounding of the output is negligible
        np.testing.assert_allclose(high[big] / low[big], 10 ** (12 / 20), rtol=1e-3)


@pytest.mark.parametrize("mains", [50, 60])
def test_powerline_at_500_hz_is_a_peak_at_the_mains_frequency(fold500, mains):
    name = f"powerline{mains}"
    result = corrupt(*fold500, name, 12.0, seed=1, fs=500)
    np.testing.assert_allclose(measured_snr_db(fold500[0], result.x), 12.0, atol=SNR_TOLERANCE_DB)
    noise = result.x.astype(np.float64) - fold500[0]
    assert power_share(noise, 500, mains - 0.5, mains + 0.5).min() > 0.99
    # Negative control: broadband noise at the same SNR is no such peak.
    assert power_share(added(fold500, "gaussian", 12.0, 500), 500, mains - 0.5, mains + 0.5).max() < 0.05


@pytest.mark.parametrize("mains, alias", [(50, 50), (60, 40)])
def test_powerline_at_100_hz_is_what_the_anti_aliasing_chain_leaves(fold100, mains, alias):
    """At 100 Hz the chain's filter (>= 60 dB from 50 Hz) leaves a residue >= 55 dB under the asked level
    (phase makes a 50 Hz residue at Nyquist vary by up to 3 dB); 60 Hz's residue sits at its 40 Hz alias."""
    x = fold100[0]
    y = corrupt(*fold100, f"powerline{mains}", 6.0, seed=1, fs=100).x
    residue = y.astype(np.float64) - x
    assert np.abs(residue).max() > 0  # it was applied
    assert measured_snr_db(x, y).min() > 6.0 + 55.0
    if alias != 50:
        assert power_share(residue, 100, alias - 0.5, alias + 0.5).min() > 0.9


def test_a_chain_with_scipys_default_filter_would_keep_50_hz_hum():
    """Negative control for the check above: decimating 500 -> 100 Hz with resample_poly's default filter
    (cutoff at 50 Hz) keeps 50 Hz hum within 20 dB, far above the 55 dB the study's chain removes."""
    t = np.arange(int(SOURCE_FS) * 10) / SOURCE_FS
    kept_db = []
    for phase in np.linspace(0, np.pi, 8, endpoint=False):
        hum = np.sin(2 * np.pi * 50 * t + phase)
        kept = sps.resample_poly(hum, 1, 5)[100:-100]  # away from the zero-padded ends
        kept_db.append(10 * np.log10(np.mean(kept**2) / np.mean(hum**2)))
    assert max(kept_db) > -20.0


def test_baseline_wander_lies_below_1_hz(fold100, fold500):
    assert power_share(added(fold100, "baseline_wander", 6.0, 100), 100, 0, 1.0).min() > 0.99
    assert power_share(added(fold500, "baseline_wander", 6.0, 500), 500, 0, 1.0).min() > 0.99
    assert power_share(added(fold100, "electrode_motion", 6.0, 100), 100, 0, 1.0).max() < 0.5  # control


def test_muscle_noise_is_broadband_above_20_hz_at_500_hz(fold500):
    noise = added(fold500, "muscle", 6.0, 500)
    assert power_share(noise, 500, 20, 250).min() > 0.99
    for low, high in ((20, 80), (80, 140), (140, 200.5)):  # flat over 20-200 Hz: ~1/3 in each
        assert power_share(noise, 500, low, high).min() > 0.2
    assert power_share(added(fold500, "electrode_motion", 6.0, 500), 500, 20, 250).max() < 0.01  # control


def test_muscle_noise_at_100_hz_keeps_what_the_chain_passes(fold100):
    assert power_share(added(fold100, "muscle", 6.0, 100), 100, 20, 40.5).min() > 0.99


def test_electrode_motion_overlaps_the_ecg_band_and_comes_in_bursts(fold100):
    noise = added(fold100, "electrode_motion", 6.0, 100)
    assert np.median(power_share(noise, 100, 0.4, 11.0)) > 0.9
    assert np.median(stats.kurtosis(noise, axis=-1, fisher=False)) > 5  # a Gaussian is 3
    control = added(fold100, "gaussian", 6.0, 100)
    assert np.median(stats.kurtosis(control, axis=-1, fisher=False)) < 3.5


def _zeroed(y):
    return (y == 0).all(axis=-1)


def test_random_lead_loss_zeroes_exactly_k_leads_nested_in_k(fold100):
    x, ids = fold100
    previous = np.zeros(x.shape[:2], bool)
    for k in (1, 3, 6, 12):
        result = corrupt(x, ids, "lead_loss_random", k, seed=2, fs=100)
        lost = _zeroed(result.x)
        assert (lost.sum(axis=1) == k).all() and (result.lost == lost).all()
        assert (result.x[~lost] == x[~lost]).all()  # the other leads untouched, bit for bit
        assert (lost >= previous).all()  # the leads lost at smaller k stay lost
        previous = lost


def lead_counts_look_uniform(lost: np.ndarray, k: int) -> bool:
    """Each lead's count of losses within 5 sd of Binomial(n, k/12): a uniform choice fails this with
    probability < 12 x 6e-7."""
    n, p = lost.shape[0], k / 12
    sd = math.sqrt(n * p * (1 - p))
    return bool((np.abs(lost.sum(axis=0) - n * p) <= 5 * sd).all())


def test_random_lead_loss_picks_every_lead_alike():
    x = np.ones((600, 12, 20), np.float32)
    result = corrupt(x, np.arange(600), "lead_loss_random", 3, seed=0, fs=100)
    assert lead_counts_look_uniform(result.lost, 3)
    first_three = np.zeros((600, 12), bool)
    first_three[:, :3] = True
    assert not lead_counts_look_uniform(first_three, 3)  # negative control: always the first k leads


@pytest.mark.parametrize("name, kept", [("limb_leads_only", LEADS[:6]), ("lead_I_only", ("I",))])
def test_reduced_lead_sets_keep_exactly_their_leads(fold100, name, kept):
    x, ids = fold100
    order = [LEADS[i] for i in (6, 0, 11, 3, 1, 7, 2, 10, 4, 9, 5, 8)]  # another lead order, by name
    permuted = x[:, [LEADS.index(lead) for lead in order]]
    for leads, signals in ((LEADS, x), (order, permuted)):
        result = corrupt(signals, ids, name, 1, seed=0, fs=100, leads=leads)
        keep = np.array([lead in kept for lead in leads])
        assert _zeroed(result.x[:, ~keep]).all() and (result.lost == ~keep).all()
        assert (result.x[:, keep] == signals[:, keep]).all()
        assert not _zeroed(signals).any()  # the check can fail: no lead is zero before


def test_a_lost_lead_can_be_zero_after_standardization(fold100):
    x, ids = fold100
    mean = x.mean(axis=(0, 2)).astype(np.float32)
    std = x.std(axis=(0, 2)).astype(np.float32)

    def standardize(y):  # as the study's loader does, in float32
        return (y - mean[:, None]) / std[:, None]

    default = corrupt(x, ids, "lead_I_only", 1, seed=0, fs=100)
    filled = corrupt(x, ids, "lead_I_only", 1, seed=0, fs=100, fill_mv=mean)
    assert (default.x[:, 1:] == 0).all()  # 0 mV ...
    np.testing.assert_allclose(
        standardize(default.x)[:, 1:, 0], np.broadcast_to(-mean[1:] / std[1:], (40, 11))
    )
    assert (standardize(filled.x)[:, 1:] == 0).all()  # ... or exactly 0 once standardized
    zeroed = zero_lost_leads(standardize(default.x), default.lost)
    assert (zeroed[:, 1:] == 0).all() and (zeroed[:, 0] == standardize(x)[:, 0]).all()


def test_gain_scales_every_lead(fold100):
    x, ids = fold100
    for g in (0.5, 2.0):
        assert (corrupt(x, ids, "gain", g, seed=0, fs=100).x == x * np.float32(g)).all()


def test_time_shift_is_a_circular_rotation_in_either_direction(fold100):
    x, ids = fold100
    y = corrupt(x, ids, "time_shift", 0.5, seed=0, fs=100).x
    directions = []
    for r in range(len(x)):
        later, earlier = np.roll(x[r], 50, axis=-1), np.roll(x[r], -50, axis=-1)
        assert (y[r] == later).all() or (y[r] == earlier).all()
        directions.append(bool((y[r] == later).all()))
    assert 0 < sum(directions) < len(x)
    with pytest.raises(EcgCrnnError, match="at least one and fewer than"):
        corrupt(x, ids, "time_shift", 0.004, seed=0, fs=100)
    with pytest.raises(EcgCrnnError, match="at least one and fewer than"):
        corrupt(x, ids, "time_shift", 10, seed=0, fs=100)  # a whole turn would be no shift


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_clean_severity_returns_the_input_bit_for_bit(fold100, name):
    x, ids = fold100
    result = corrupt(x, ids, name, REGISTRY[name].clean, seed=0, fs=100)
    assert result.x.tobytes() == x.tobytes() and result.x is not x
    assert not result.lost.any() and result.source == "none"
    assert corrupt(x, ids, name, DIRTY[name], seed=0, fs=100).x.tobytes() != x.tobytes()  # control


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_same_bytes_whole_in_chunks_or_shuffled(fold100, name, monkeypatch):
    x, ids = fold100
    whole = corrupt(x, ids, name, DIRTY[name], seed=5, fs=100)
    cuts = [0, 1, 8, 23, len(ids)]
    pieces = [
        corrupt(x[a:b].copy(), ids[a:b].copy(), name, DIRTY[name], seed=5, fs=100)
        for a, b in zip(cuts, cuts[1:], strict=False)
    ]
    assert np.concatenate([p.x for p in pieces]).tobytes() == whole.x.tobytes()
    assert (np.concatenate([p.lost for p in pieces]) == whole.lost).all()
    order = np.random.default_rng(0).permutation(len(ids))
    shuffled = corrupt(x[order], ids[order], name, DIRTY[name], seed=5, fs=100)
    assert shuffled.x.tobytes() == whole.x[order].tobytes()
    monkeypatch.setattr(registry, "BLOCK", 7)  # the internal blocks, too
    assert corrupt(x, ids, name, DIRTY[name], seed=5, fs=100).x.tobytes() == whole.x.tobytes()


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_seeds_change_exactly_the_random_corruptions(fold100, name):
    x, ids = fold100
    a = corrupt(x, ids, name, DIRTY[name], seed=0, fs=100).x
    b = corrupt(x, ids, name, DIRTY[name], seed=1, fs=100).x
    deterministic = name in ("gain", "limb_leads_only", "lead_I_only")
    assert (a.tobytes() == b.tobytes()) == deterministic
    if not deterministic:  # for many records, not one (a shift's direction: Binomial(40, 1/2) > 8)
        assert (a != b).any(axis=(1, 2)).mean() > 0.2


def test_ids_not_positions_key_the_draws(fold100):
    x, ids = fold100
    a = corrupt(x, ids, "gaussian", 6.0, seed=0, fs=100).x
    b = corrupt(x, ids + 1, "gaussian", 6.0, seed=0, fs=100).x
    assert (a != b).any(axis=(1, 2)).all()


@pytest.mark.parametrize("name", ["gaussian", "electrode_motion", "powerline60", "lead_loss_random"])
def test_lead_order_does_not_change_a_leads_corruption(fold100, name):
    x, ids = fold100
    standard = corrupt(x, ids, name, DIRTY[name], seed=0, fs=100)
    reversed_x = np.ascontiguousarray(x[:, ::-1])
    reordered = corrupt(reversed_x, ids, name, DIRTY[name], seed=0, fs=100, leads=LEADS[::-1])
    assert reordered.x[:, ::-1].tobytes() == standard.x.tobytes()
    assert (reordered.lost[:, ::-1] == standard.lost).all()


@pytest.mark.parametrize("name", NOISES)
def test_added_noise_has_no_offset(fold100, name):
    """The noise is zero-mean over each record: a constant offset is no artifact (see ecg_crnn.robustness.snr)."""
    noise = added(fold100, name, 0.0, 100)
    rms = np.sqrt(np.mean(noise**2, axis=-1))
    assert (np.abs(noise.mean(axis=-1)) < 1e-4 * rms).all()


def test_inputs_are_checked(fold100):
    x, ids = fold100
    with pytest.raises(EcgCrnnError, match="float32"):
        corrupt(x.astype(np.float64), ids, "gain", 2, seed=0, fs=100)
    with pytest.raises(EcgCrnnError, match="record ids"):
        corrupt(x, ids[:-1], "gain", 2, seed=0, fs=100)
    with pytest.raises(EcgCrnnError, match="12 standard leads"):
        corrupt(x, ids, "gain", 2, seed=0, fs=100, leads=[*LEADS[:11], "V7"])
    with pytest.raises(EcgCrnnError, match="unknown corruption 'blur'"):
        corrupt(x, ids, "blur", 1, seed=0, fs=100)
    with pytest.raises(EcgCrnnError, match="non-negative"):
        corrupt(x, ids, "gaussian", 6, seed=-1, fs=100)
    with pytest.raises(EcgCrnnError, match="snr_per 'sample'"):
        corrupt(x, ids, "gain", 2, seed=0, fs=100, snr_per="sample")


def test_default_plan_names_every_corruption():
    plan = parse_plan()
    assert set(DEFAULT_PARAMS["corruptions"]) == set(REGISTRY)
    assert len(plan.conditions) == sum(len(v) for v in DEFAULT_PARAMS["corruptions"].values())
    assert plan.noise_source is None and plan.snr_per == "lead" and plan.seed == 0
    keys = [c.key for c in plan.conditions]
    assert len(set(keys)) == len(keys) and "gaussian_24" in keys and "gain_0.5" in keys
    assert all(row["meaning"] for row in describe(plan))


def test_plan_from_params():
    section = yaml.safe_load("seed: 4\nnoise_source: data/raw/nstdb\ncorruptions: {gaussian: [.inf, 0]}")
    plan = parse_plan(section)
    assert plan.seed == 4 and str(plan.noise_source) == "data/raw/nstdb"
    assert [(c.name, c.severity) for c in plan.conditions] == [("gaussian", math.inf), ("gaussian", 0.0)]


@pytest.mark.parametrize(
    "section, message",
    [
        ({"corruptions": {"blur": [1]}}, "robustness.corruptions.blur: unknown"),
        ({"corruptions": {"gain": [0]}}, "gain severity 0 is invalid: expected a positive factor"),
        ({"corruptions": {"lead_loss_random": [13]}}, "whole number of leads"),
        ({"corruptions": {"lead_loss_random": [1.5]}}, "whole number of leads"),
        ({"corruptions": {"lead_loss_random": [math.inf]}}, "whole number of leads"),
        ({"corruptions": {"time_shift": [-0.1]}}, "non-negative number of seconds"),
        ({"corruptions": {"gaussian": ["loud"]}}, "a finite SNR in dB"),
        ({"corruptions": {"gaussian": [-math.inf]}}, "a finite SNR in dB"),
        ({"corruptions": {"gaussian": [6, 6]}}, "repeat"),
        ({"corruptions": {"gaussian": 6}}, "non-empty list"),
        ({"snr_per": "sample"}, "robustness.snr_per"),
        ({"seed": -1}, "robustness.seed"),
        ({"noise": "x"}, "unknown key"),
    ],
)
def test_bad_params_are_named(section, message):
    with pytest.raises(EcgCrnnError, match=message):
        parse_plan(section)
