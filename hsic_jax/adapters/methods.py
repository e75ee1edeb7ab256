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

@dataclasses.dataclass(frozen=True)
class Required:
    """The default of a method field that has none: the config must set a `type` value
    (`configs/base.py` makes it a placeholder)."""

    type: type


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    """Everything about one fine-tuning method, in one place (`SPECS`).

    `display`: its column in reports; `trains`: which parameters it trains ('head', 'biases'
    of the targeted layers, 'factors' of its adapter, or 'all'), each with the head; `adapter`:
    the `Adapter` class of its factors; `defaults`: its config fields besides `name` and
    `targets` with their defaults (`Required`: none), read by `configs/base.py`;
    `renamed`: a config field whose adapter field has another name; `b_side`: its adapter's
    B factor at λ × the learning rate (the config field `lam`)."""

    display: str
    trains: str
    adapter: type | None = None
    defaults: Mapping[str, object] = dataclasses.field(default_factory=dict)
    renamed: Mapping[str, str] = dataclasses.field(default_factory=dict)
    b_side: bool = False

    def adapter_field(self, field: str) -> str:
        return self.renamed.get(field, field)


# One factor zero, the other N(0, σ²) (the paper; its σ was lost from the text: 0.02 is about
# the std of peft's kaiming-uniform init for 768 inputs). init='kaiming' is peft's.
_FACTOR_INIT = dict(init="gaussian", init_std=0.02)
_RENAMED = {"init": "factor_init"}
_LORA = dict(rank=4, alpha=4.0, **_FACTOR_INIT)
_KRONA = dict(a_shape=Required(tuple), b_shape=Required(tuple), scale=1.0, **_FACTOR_INIT)
# In the paper's column order (its Tables 6–10).
SPECS: dict[str, MethodSpec] = {
    "linear_probe": MethodSpec("LP", "head"),
    "bitfit": MethodSpec("BitFit", "biases"),
    "lora": MethodSpec("LoRA", "factors", LoRA, _LORA, _RENAMED),
    "lora_plus": MethodSpec("LoRA+", "factors", LoRA, {**_LORA, "lam": 1.0}, _RENAMED, True),
    "lokr": MethodSpec("LoKr", "factors", LoKr, dict(factor=8, rank=8, alpha=8.0,
                                                     decompose_both=False, **_FACTOR_INIT),
                       _RENAMED),
    "krona": MethodSpec("KronA", "factors", KronA, _KRONA, _RENAMED),
    "krona_plus": MethodSpec("KronA+", "factors", KronA, {**_KRONA, "lam": 1.0}, _RENAMED, True),
    "fft": MethodSpec("FFT", "all"),
}
METHODS = tuple(SPECS)


@dataclasses.dataclass(frozen=True)
class Method:
    """A fine-tuning method: its optional adapter, the layers it targets and the λ of `b_side`."""

    name: str
    targets: tuple[str, ...]
    adapter: Adapter | None = None
    lam: float = 1.0

    @property
    def uses_targets(self) -> bool:
        """Whether the method does something to its target layers (their biases or factors);
        FFT and the linear probe do not, and run on a model without those layers."""
        return SPECS[self.name].trains in ("biases", "factors")

    @property
    def trains_biases(self) -> bool:
        """Whether the method trains the biases of its target layers (BitFit), which the
        targets must then have."""
        return SPECS[self.name].trains == "biases"


def method_from_config(cfg: Mapping) -> Method:
    """The `Method` of a `config.method` mapping: `name`, `targets` and the method's fields.

    A field of another method, or a missing required field, is an error naming it. Whether
    the targets are layers of the model is checked against the model (`TunedModel.create`).
    """
    cfg = dict(cfg)
    name = cfg.pop("name", None)
    if name not in SPECS:
        raise ValueError(f"method.name {name!r} is not one of {METHODS}")
    spec = SPECS[name]
    targets = tuple(cfg.pop("targets", ("q", "v")))
    if not targets:
        raise ValueError(f"method {name!r}: targets must name at least one layer")
    unknown = sorted(set(cfg) - set(spec.defaults))
    if unknown:
        raise ValueError(f"method {name!r} has no field(s) {unknown}; its fields are "
                         f"{['name', 'targets', *spec.defaults]}")
    lam = float(cfg.pop("lam", 1.0))
    if not lam > 0:
        raise ValueError(f"method {name!r}: lam must be > 0, got {lam}")
    missing = [k for k, v in spec.defaults.items()
               if isinstance(v, Required) and cfg.get(k) is None]
    if missing:
        raise ValueError(f"method {name!r} needs {missing} (no default: the config sets them)")
    adapter = None
    if spec.adapter is not None:
        adapter = spec.adapter(targets=targets, **{
            spec.adapter_field(k): (tuple(v) if isinstance(v, (list, tuple)) else v)
            for k, v in cfg.items() if v is not None})
    return Method(name, targets, adapter, lam)


def method_rules(method: Method, sites: Sequence) -> tuple[tuple[str, str], ...]:
    """The (regex, label) rules of `method` on a model whose targeted layers are `sites`."""
    spec = SPECS[method.name]
    head, backbone = ("head/.*", BASE), ("backbone/.*", FROZEN)
    if spec.trains == "all":
        return ((".*", BASE),)
    if spec.trains == "biases":
        layers = "|".join(sorted({re.escape("/".join(s.path)) for s in sites}))
        return (rf"backbone/({layers})/bias", BASE), head, backbone
    factors = ((r"adapters/.*/b", B_SIDE),) if spec.b_side else ()
    if spec.trains == "factors":
        factors += (("adapters/.*", BASE),)
    return *factors, head, backbone


def path_name(path) -> str:
    """'/'-joined names of a pytree key path, e.g. 'backbone/block_0/attn/q/kernel'."""
    return "/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in path)


def param_labels(params, method: Method, sites: Sequence):
    """A pytree like `params` with one of `LABELS` per leaf.

    Every leaf must be matched by a rule, and every rule that trains must match some
    leaf; either failure is an error naming the paths or rule (e.g. LoRA's rules on params
    built without its adapter).
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
                         "params built for another method (or without its adapter)?")
    return labels
