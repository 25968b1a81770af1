"""The architecture registry, and every architecture's forward/backward pass and cost counting."""

import pytest
import torch
from torch import nn

from ecg_crnn.config import ModelSettings
from ecg_crnn.errors import EcgCrnnError
from ecg_crnn.models import build_model, count_macs, count_parameters
from ecg_crnn.registry import REGISTRY, architecture_name, list_models


def test_registry_has_the_13_study_architectures():
    assert len(REGISTRY) == 13
    assert list_models("cnn_bi*") == [f"cnn_bi{t}{d}" for t in ("lstm", "gru") for d in (1, 2, 3)]
    assert architecture_name("lstm", True, 1) == "cnn_bilstm1"
    assert architecture_name("gru", False, 0) == architecture_name(None, True, 2) == "cnn"


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(EcgCrnnError, match="unknown architecture 'cnn_lstm4'; known: cnn, cnn_lstm1"):
        build_model("cnn_lstm4", 12, 5, ModelSettings(channels=[8], kernel_size=3, hidden=8, dropout=0.1))


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_architecture_trains_a_step(name):
    torch.manual_seed(0)
    model = build_model(
        name, 12, 5, ModelSettings(channels=[16, 16, 32], kernel_size=5, hidden=16, dropout=0.1)
    )
    x, y = torch.randn(8, 12, 250), (torch.rand(8, 5) < 0.3).float()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    before = [p.detach().clone() for p in model.parameters()]
    loss = nn.functional.binary_cross_entropy_with_logits(model(x), y)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    opt.step()
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    arch = REGISTRY[name]
    assert len(model.rnn) == arch.layers
    for layer in model.rnn:
        assert layer.num_layers == 1 and layer.bidirectional == arch.bidirectional
        assert isinstance(layer, nn.LSTM if arch.rnn == "lstm" else nn.GRU)


def test_only_the_temporal_part_differs():
    cnn, lstm = (
        build_model("cnn", 12, 5, ModelSettings(channels=[16, 32], kernel_size=5, hidden=16, dropout=0.1)),
        build_model(
            "cnn_lstm1", 12, 5, ModelSettings(channels=[16, 32], kernel_size=5, hidden=16, dropout=0.1)
        ),
    )
    front = lambda m: [p.shape for p in m.front.parameters()]  # noqa: E731
    assert front(cnn) == front(lstm)
    lstm_params = 4 * (16 * (32 + 16) + 2 * 16)  # gates x (W_ih, W_hh) + two bias vectors
    head_diff = (2 * 16 - 2 * 32) * 5  # the classifier sees 2x16 instead of 2x32 features
    assert count_parameters(lstm) - count_parameters(cnn) == lstm_params + head_diff


def test_mac_count_matches_hand_computation():
    model = build_model(
        "cnn_bigru2", 12, 5, ModelSettings(channels=[16, 32], kernel_size=5, hidden=8, dropout=0.1)
    )
    # conv1: 250 samples x 16 out x 12 in x 5; pool -> 125; conv2: 125 x 32 x 16 x 5; pool -> 62 steps
    conv = 250 * 16 * 12 * 5 + 125 * 32 * 16 * 5
    steps, gates, h = 62, 3, 8
    gru = 2 * steps * gates * h * (32 + h) + 2 * steps * gates * h * (2 * h + h)
    linear = 2 * 2 * h * 5
    assert count_macs(model, 12, 250) == conv + gru + linear


def test_recurrent_layers_fall_back_to_float32_where_bf16_is_unsupported(monkeypatch):
    """Under autocast, a device whose recurrent kernels lack bf16 runs them in float32 (not bf16, not an error)."""
    import ecg_crnn.models as models

    model = build_model(
        "cnn_gru2", 12, 5, ModelSettings(channels=[16, 16], kernel_size=5, hidden=8, dropout=0.0)
    ).eval()
    seen = []
    for layer in model.rnn:
        layer.register_forward_hook(lambda mod, inp, out: seen.append((inp[0].dtype, out[0].dtype)))
    x = torch.randn(2, 12, 100)
    monkeypatch.setattr(models, "rnn_runs_in_bf16", lambda device, kind="lstm": False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    assert seen == [(torch.float32, torch.float32)] * 2
    assert torch.isfinite(out).all()
    seen.clear()
    monkeypatch.setattr(models, "rnn_runs_in_bf16", lambda device, kind="lstm": True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(x)
    assert seen[0][0] == torch.bfloat16  # where supported, the layers see the autocast dtype


@pytest.mark.parametrize("name", ["cnn", "cnn_gru1", "cnn_lstm3", "cnn_bigru2"])
def test_dropout_is_in_one_place_at_every_depth_and_comes_from_torch_rng(name):
    """Every architecture has one dropout, on the pooled features before the classifier: the recurrent stack
    (0 to 3 layers) runs without any in training too, and the masks come from torch's RNG (so the same seed gives
    the same masks: a resumed run continues exactly; cuDNN's own RNN dropout state is never used)."""
    model = build_model(
        name, 12, 5, ModelSettings(channels=[16, 16], kernel_size=5, hidden=8, dropout=0.5)
    ).train()
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert dropouts == [model.dropout] and model.dropout.p == 0.5
    assert all(layer.dropout == 0 for layer in model.rnn)
    x = torch.randn(4, 12, 100)
    features = []
    model.classifier.register_forward_hook(lambda mod, inp, out: features.append(inp[0]))
    torch.manual_seed(3)
    a = model(x)
    torch.manual_seed(3)
    b = model(x)
    torch.manual_seed(4)
    c = model(x)
    assert torch.equal(a, b) and not torch.equal(a, c)
    kept = [(f != 0) for f in features]
    assert torch.equal(kept[0], kept[1]) and not torch.equal(kept[0], kept[2])  # the masks, drawn by torch
    pooled = [f * m.float() for f, m in zip(features, kept, strict=True)]
    # Where both masks keep a feature it has the same value: nothing before the head was dropped differently.
    both = kept[0] & kept[2]
    assert both.any() and torch.allclose(pooled[0][both], pooled[2][both])
