"""The parameters of a run in two parts: the trainable leaves and the frozen ones.

    trainable, frozen = split(params, labels)     # labels: `TunedModel.labels(params)`
    params = combine(trainable, frozen)

Both parts are plain nested dicts with the paths of `params` (empty dicts dropped). The
train state carries only the trainable part, one copy per seed; the frozen part (the
backbone of a PEFT method or a linear probe, nothing for FFT) is held once and shared by
every seed, so N seeds cost N adapters, not N backbones.
"""

from collections.abc import Mapping

from hsic_jax.adapters.methods import FROZEN


def split(params: Mapping, labels: Mapping) -> tuple[dict, dict]:
    """`(trainable, frozen)`: the leaves of `params` whose label is not / is `FROZEN`."""
    return _select(params, labels, False), _select(params, labels, True)


def combine(a: Mapping, b: Mapping) -> dict:
    """One nested dict of two with disjoint leaves (e.g. the two parts of `split`)."""
    out = dict(a)
    for key, value in b.items():
        if key not in out:
            out[key] = value
        elif isinstance(value, Mapping) and isinstance(out[key], Mapping):
            out[key] = combine(out[key], value)
        else:
            raise ValueError(f"combine: leaf {key!r} is in both trees")
    return out


def _select(params: Mapping, labels: Mapping, frozen: bool) -> dict:
    out = {}
    for key, value in params.items():
        if isinstance(value, Mapping):
            sub = _select(value, labels[key], frozen)
            if sub:
                out[key] = sub
        elif (labels[key] == FROZEN) == frozen:
            out[key] = value
    return out

