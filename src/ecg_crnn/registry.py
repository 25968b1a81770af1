"""The study's named architectures, without torch: name -> recurrent type, direction and depth.

Names say what they are: `cnn` (no recurrence) and `cnn_{lstm,gru,bilstm,bigru}{1,2,3}`. The same name is the
DVC matrix key, the models/ folder, the study table's row and the Optuna value. Config, the search, the plots and
the networks (models.py) all read it from here, so none parses a name.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from .errors import EcgCrnnError

RNN_TYPES = ("lstm", "gru", "bilstm", "bigru")  # the recurrent types, in the order the report lists them


@dataclass(frozen=True)
class Architecture:
    name: str
    rnn: str | None  # "lstm", "gru" or None
    bidirectional: bool = False
    layers: int = 0

    @property
    def rnn_type(self) -> str:
        """ "none", "lstm", "gru", "bilstm" or "bigru": one colour and one line per type in the plots."""
        return "none" if self.rnn is None else ("bi" if self.bidirectional else "") + self.rnn


REGISTRY: dict[str, Architecture] = {"cnn": Architecture("cnn", None)}
for _rnn in ("lstm", "gru"):
    for _bi in (False, True):
        for _layers in (1, 2, 3):
            _name = f"cnn_{'bi' if _bi else ''}{_rnn}{_layers}"
            REGISTRY[_name] = Architecture(_name, _rnn, _bi, _layers)
ALL_ARCHITECTURES = list(REGISTRY)


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a shell pattern, e.g. `cnn_bi*`."""
    return [name for name in REGISTRY if fnmatch.fnmatch(name, pattern)]


def get_architecture(name: str) -> Architecture:
    try:
        return REGISTRY[name]
    except KeyError:
        raise EcgCrnnError(f"unknown architecture {name!r}; known: {', '.join(REGISTRY)}") from None


def architecture_name(rnn: str | None, bidirectional: bool, layers: int) -> str:
    """The registry name of a point of the search space (depth 0 or no rnn -> `cnn`)."""
    if rnn is None or layers == 0:
        return "cnn"
    return get_architecture(f"cnn_{'bi' if bidirectional else ''}{rnn}{layers}").name
