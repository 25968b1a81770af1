"""The architecture registry, and every architecture's forward/backward pass and cost counting."""

import pytest
import torch
from torch import nn

from ecg_crnn.errors import EcgCrnnError
from ecg_crnn.models import (
    REGISTRY,
    architecture_name,
    build_model,
    count_macs,
    count_parameters,
    list_models,
)


def test_registry_has_the_13_study_architectures():
    assert len(REGISTRY) == 13
    assert list_models("cnn_bi*") == [f"cnn_bi{t}{d}" for t in ("lstm", "gru") for d in (1, 2, 3)]
    assert architecture_name("lstm", True, 1) == "cnn_bilstm1"
    assert architecture_name("gru", False, 0) == architecture_name(None, True, 2) == "cnn"


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(EcgCrnnError, match="unknown architecture 'cnn_lstm4'; known: cnn, cnn_lstm1"):
        build_model("cnn_lstm4", 12, 5, [8], 3, 8, 0.1)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_architecture_trains_a_step(name):
    torch.manual_seed(0)
    model = build_model(name, 12, 5, [16, 16, 32], 5, 16, 0.1)
    x, y = torch.randn(8, 12, 250), (torch.rand(8, 5) < 0.3).float()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    before = [p.detach().clone() for p in model.parameters()]
    loss = nn.functional.binary_cross_entropy_with_logits(model(x), y)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    opt.step()
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    arch = REGISTRY[name]
    assert (model.rnn is None) == (arch.rnn is None)
    if model.rnn is not None:
        assert model.rnn.num_layers == arch.layers and model.rnn.bidirectional == arch.bidirectional


def test_only_the_temporal_part_differs():
    cnn, lstm = (
        build_model("cnn", 12, 5, [16, 32], 5, 16, 0.1),
        build_model("cnn_lstm1", 12, 5, [16, 32], 5, 16, 0.1),
    )
    front = lambda m: [p.shape for p in m.front.parameters()]  # noqa: E731
    assert front(cnn) == front(lstm)
    lstm_params = 4 * (16 * (32 + 16) + 2 * 16)  # gates x (W_ih, W_hh) + two bias vectors
    head_diff = (2 * 16 - 2 * 32) * 5  # the classifier sees 2x16 instead of 2x32 features
    assert count_parameters(lstm) - count_parameters(cnn) == lstm_params + head_diff


def test_mac_count_matches_hand_computation():
    model = build_model("cnn_bigru2", 12, 5, [16, 32], 5, 8, 0.1)
    # conv1: 250 samples x 16 out x 12 in x 5; pool -> 125; conv2: 125 x 32 x 16 x 5; pool -> 62 steps
    conv = 250 * 16 * 12 * 5 + 125 * 32 * 16 * 5
    steps, gates, h = 62, 3, 8
    gru = 2 * steps * gates * h * (32 + h) + 2 * steps * gates * h * (2 * h + h)
    linear = 2 * 2 * h * 5
    assert count_macs(model, 12, 250) == conv + gru + linear
