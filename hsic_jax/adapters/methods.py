"""Fine-tuning methods: which parameters train, at which learning rate, with which adapter.

A `Method` is an optional `Adapter`, the names of the layers it targets and λ; against a
model's adapted layers (`hsic_jax.adapters.tuned.Site`s) it gives an ordered list of
(regex, label) rules over the '/'-joined parameter paths (big_vision's `optax.make` style;
the first rule whose regex matches the whole path wins). Labels:

  'frozen'  no gradient, no update, no optimizer state
  'base'    AdamW at the base learning rate
  'b_side'  AdamW at λ × the base learning rate (the B factor of LoRA+ and KronA+)

The methods, exactly as the paper defines them (`../shared/docs/spectralgpt.md` §5, §7):

  linear_probe  head only; the post-pool `norm` stays frozen (LP count = 768·C + C)
  bitfit        biases of the targeted layers (q and v by default) + head
  lora          LoRA factors of the targeted layers + head; lora_plus: `b` at λ·lr
  krona         KronA factors + head; krona_plus: `b` at λ·lr (see `krona.py` for why `b`)
  lokr          LoKr factors + head
  fft           every parameter

Only the B factors get λ·lr: peft's `create_loraplus_optimizer` also lifts every 1-D
trainable parameter (here `head/bias`) to λ·lr; the paper defines LoRA+ on B alone.
"""

import dataclasses
import re
from collections.abc import Mapping, Sequence

import jax

from hsic_jax.adapters.base import Adapter
from hsic_jax.adapters.krona import KronA
from hsic_jax.adapters.lokr import LoKr
from hsic_jax.adapters.lora import LoRA

FROZEN, BASE, B_SIDE = "frozen", "base", "b_side"
LABELS = (FROZEN, BASE, B_SIDE)

# Config fields of each method besides `name` and `targets`, mapped to the adapter's fields.
_FACTOR_INIT = {"init": "factor_init", "init_std": "init_std"}
METHOD_FIELDS: dict[str, dict[str, str]] = {
    "linear_probe": {},
    "bitfit": {},
    "lora": {"rank": "rank", "alpha": "alpha", **_FACTOR_INIT},
    "lora_plus": {"rank": "rank", "alpha": "alpha", **_FACTOR_INIT, "lam": "lam"},
    "krona": {"a_shape": "a_shape", "b_shape": "b_shape", "scale": "scale", **_FACTOR_INIT},
    "krona_plus": {"a_shape": "a_shape", "b_shape": "b_shape", "scale": "scale",
                   **_FACTOR_INIT, "lam": "lam"},
    "lokr": {"factor": "factor", "rank": "rank", "alpha": "alpha",
             "decompose_both": "decompose_both", **_FACTOR_INIT},
    "fft": {},
}
METHODS = tuple(METHOD_FIELDS)
_ADAPTERS = {"lora": LoRA, "lora_plus": LoRA, "krona": KronA, "krona_plus": KronA, "lokr": LoKr}


@dataclasses.dataclass(frozen=True)
class Method:
    """A fine-tuning method: its optional adapter, the layers it targets and the λ of `b_side`."""

    name: str
    targets: tuple[str, ...]
    adapter: Adapter | None = None
    lam: float = 1.0

    @property
    def trains_biases(self) -> bool:
        """Whether the method trains the biases of its target layers (BitFit), which the
        targets must then have."""
        return self.name == "bitfit"


def method_from_config(cfg: Mapping) -> Method:
    """The `Method` of a `config.method` mapping: `name`, `targets` and the method's fields.

    A field of another method, or a missing required field, is an error naming it. Whether
    the targets are layers of the model is checked against the model (`TunedModel.create`).
    """
    cfg = dict(cfg)
    name = cfg.pop("name", None)
    if name not in METHOD_FIELDS:
        raise ValueError(f"method.name {name!r} is not one of {METHODS}")
    targets = tuple(cfg.pop("targets", ("q", "v")))
    if not targets:
        raise ValueError(f"method {name!r}: targets must name at least one layer")
    fields = METHOD_FIELDS[name]
    unknown = sorted(set(cfg) - set(fields))
    if unknown:
        raise ValueError(f"method {name!r} has no field(s) {unknown}; its fields are "
                         f"{['name', 'targets', *fields]}")
    lam = float(cfg.pop("lam", 1.0))
    if not lam > 0:
        raise ValueError(f"method {name!r}: lam must be > 0, got {lam}")
    adapter = None
    if name in _ADAPTERS:
        kwargs = {fields[k]: (tuple(v) if isinstance(v, (list, tuple)) else v)
                  for k, v in cfg.items() if v is not None}
        missing = [k for k in ("a_shape", "b_shape") if k in fields and fields[k] not in kwargs]
        if missing:
            raise ValueError(f"method {name!r} needs {missing} (the KronA factor shapes)")
        adapter = _ADAPTERS[name](targets=targets, **kwargs)
    return Method(name, targets, adapter, lam)


def method_rules(method: Method, sites: Sequence) -> tuple[tuple[str, str], ...]:
    """The (regex, label) rules of `method` on a model whose targeted layers are `sites`."""
    head = ("head/.*", BASE)
    backbone = ("backbone/.*", FROZEN)
    if method.name == "fft":
        return ((".*", BASE),)
    if method.name == "linear_probe":
        return head, backbone
    if method.name == "bitfit":
        layers = "|".join(sorted({re.escape("/".join(s.path)) for s in sites}))
        return (rf"backbone/({layers})/bias", BASE), head, backbone
    if method.name == "lokr":
        return ("adapters/.*", BASE), head, backbone
    b_label = B_SIDE if method.name.endswith("_plus") else BASE
    return (r"adapters/.*/b", b_label), ("adapters/.*", BASE), head, backbone


def path_name(path) -> str:
    """'/'-joined names of a pytree key path, e.g. 'backbone/block_0/attn/q/kernel'."""
    return "/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in path)


def param_labels(params, method: Method, sites: Sequence):
    """A pytree like `params` with one of `LABELS` per leaf.

    Every leaf must be matched by a rule, and every rule that trains must match some
    leaf; either failure is an error naming the paths or rule (e.g. LoRA's rules on params
    built without its adapter, or BitFit on layers without biases).
    """
    rules = method_rules(method, sites)
    compiled = [(re.compile(rx), label) for rx, label in rules]
    used, unmatched = set(), []

    def label(path, _):
        name = path_name(path)
        for i, (rx, lab) in enumerate(compiled):
            if rx.fullmatch(name):
                used.add(i)
                return lab
        unmatched.append(name)
        return None

    labels = jax.tree_util.tree_map_with_path(label, params)
    if unmatched:
        raise ValueError(f"method {method.name!r} has no rule for parameters {unmatched[:5]}"
                         f"{' …' if len(unmatched) > 5 else ''}: were the params built for "
                         "another method?")
    idle = [rx for i, (rx, lab) in enumerate(rules) if lab != FROZEN and i not in used]
    if idle:
        raise ValueError(f"method {method.name!r}: no parameter matches {idle}; were the "
                         "params built for another method (or without its adapter, or are "
                         "the targeted layers without biases)?")
    return labels
