"""The pipeline's stages called as the tests need them: with the repository's parameters plus a few settings."""

from itertools import product
from pathlib import Path

from ecg_crnn.stages import filter, segment

from .params import params


def filter_records(raw: Path, out: Path, **settings) -> dict:
    """The filter stage on `raw` into `out`, with filter.* `settings` over the repository's parameters."""
    p = params({f"filter.{k}": v for k, v in settings.items()})
    return filter.run(p, filter.Paths(raw, out), progress=False)


def segment_records(filtered: Path, out: Path, **settings) -> dict:
    """The segment stage on `filtered` into `out`, with segment.* `settings` over the repository's parameters."""
    return segment.run(params({f"segment.{k}": v for k, v in settings.items()}), segment.Paths(filtered, out))


def run_study(p, raw: Path, root: Path) -> Path:
    """A whole study in this process, through the stage functions the CLI (and so dvc.yaml) calls: filter, segment,
    bootstrap, every (architecture, window, seed)'s cost, train and evaluate, then compare. Returns reports/study."""
    from ecg_crnn.layout import RunKey, cost_file, evaluation_dir, model_dir
    from ecg_crnn.stages import bootstrap, compare, cost, evaluate, train

    f, s, ev, md = root / "data/filtered", root / "data/segmented", root / "evaluation", root / "models"
    filter.run(p, filter.Paths(raw, f), progress=False)
    segment.run(p, segment.Paths(f, s))
    bootstrap.run(p, bootstrap.Paths(f, s, ev / "bootstrap"))
    for w in p.study.windows:
        for arch in p.study.architectures:
            cost.run(p, arch, w, cost.Paths(f, s, cost_file(arch, w, ev)))
            for fraction, rotation, seed in product(
                p.study.train_fractions, p.segment.rotations, p.train.seeds
            ):
                key = RunKey(arch, float(w), seed, rotation, fraction)
                model = model_dir(key, md)
                train.run(p, key, train.Paths(f, s, model, root / ".resume" / key.folder), progress=False)
                paths = evaluate.Paths(f, s, model / "model.pt", ev / "bootstrap", evaluation_dir(key, ev))
                evaluate.run(p, key, paths)
    out = root / "reports/study"
    paths = compare.Paths(ev, md, f, s, out, root / "reports/study.json", None, None)
    compare.run(p, paths)
    return out
