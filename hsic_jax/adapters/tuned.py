"""A model of any family with a fine-tuning method applied from outside, by parameter path.

A family's module knows nothing about PEFT (levanter's `loraize` and big_vision's pattern
lists are the models for this). It names, in `ADAPTABLE`, the linear layers a method may
target: `{'q': Target(r'(block_\\d+)/attn/q'), ...}`, a regular expression over the path of
a `nn.Dense` under `backbone`, whose first group names the adapter's group (the block); a
fused layer (one Dense computing q, k and v) names the slice of its outputs with `part`.

`TunedModel.create(module, method, adaptable)` resolves the method's targets against the
module's parameter shapes into `Site`s, once. Then:

  init(key, x)     the module's params `{'backbone', 'head'}` plus, for a factored method,
                   `adapters`: `{group: {target: factors}}`, e.g. `adapters/block_0/q/{a, b}`
  apply(params, x) the module's forward, with `adapter(x, factors)` added to the output of
                   every adapted Dense (through `flax.linen.intercept_methods`)
  labels(params)   frozen / base / b_side per leaf, from the method's rules over the same paths
  merge(params)    params without `adapters`, each ΔW folded into its base kernel

so that every family gets every method, merge, export and BitFit without code of its own.
"""

import dataclasses
import re
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from hsic_jax.adapters.base import Adapter
from hsic_jax.adapters.methods import Method, param_labels


@dataclasses.dataclass(frozen=True)
class Target:
    """Where a target layer name lives in a family's backbone.

    Attributes:
      pattern: regex over a Dense layer's '/'-joined path under `backbone`; group 1 names
        the adapter group (e.g. `(block_\\d+)/attn/q`).
      part: `(i, n)`: the i-th of n equal slices of the layer's outputs (q of a fused qkv
        layer is `(0, 3)`), or None for the whole layer.
    """

    pattern: str
    part: tuple[int, int] | None = None


@dataclasses.dataclass(frozen=True)
class Site:
    """One adapted layer: factors `params['adapters'][group][target]` on the Dense at `path`
    (under `backbone`), of `d_in` inputs and `d_out` outputs (of the slice, for a part)."""

    group: str
    target: str
    path: tuple[str, ...]
    d_in: int
    d_out: int
    part: tuple[int, int] | None = None

    @property
    def columns(self) -> slice:
        """The slice of the Dense layer's outputs this site adapts."""
        if self.part is None:
            return slice(None)
        return slice(self.part[0] * self.d_out, (self.part[0] + 1) * self.d_out)


def find_sites(backbone: Mapping, adaptable: Mapping[str, Target],
               targets: Sequence[str]) -> tuple[Site, ...]:
    """The layers of `backbone` (params or shapes) that `targets` name, in parameter order."""
    unknown = [t for t in targets if t not in adaptable]
    if unknown or not targets:
        raise ValueError(f"method targets {list(targets)}: {unknown or 'none given'}; the "
                         f"adaptable layers of this model are {sorted(adaptable)}")
    kernels = [(path, leaf) for path, leaf in _leaves(backbone) if path[-1] == "kernel"
               and len(leaf.shape) == 2]
    sites = []
    for path, kernel in kernels:
        name = "/".join(path[:-1])
        for target in targets:
            match = re.fullmatch(adaptable[target].pattern, name)
            if match:
                part = adaptable[target].part
                d_in, d_out = kernel.shape
                sites.append(Site(match.group(1), target, path[:-1], d_in,
                                  d_out // (part[1] if part else 1), part))
    missing = sorted(set(targets) - {s.target for s in sites})
    if missing:
        raise ValueError(f"method targets {missing} match no layer of this model")
    return tuple(sites)


def _check_biases(backbone: Mapping, adaptable: Mapping[str, Target],
                  sites: Sequence[Site]) -> None:
    """Refuse targets whose layers have no bias (for a method that trains biases), naming
    the targets of this model whose layers all have one."""
    def has_bias(site: Site) -> bool:
        node = backbone
        for key in site.path:
            node = node[key]
        return "bias" in node

    bare = sorted({s.target for s in sites if not has_bias(s)})
    if bare:
        every = find_sites(backbone, adaptable, tuple(adaptable))
        with_bias = [t for t in adaptable if all(has_bias(s) for s in every if s.target == t)]
        raise ValueError(
            f"config.method.targets: {', '.join(bare)} have no bias in this model (layer "
            f"{'/'.join(next(s.path for s in sites if s.target == bare[0]))}), and this method "
            f"trains biases; the targets with biases here are {with_bias}: set "
            f"--config.method.targets=\"{tuple(with_bias)}\"")


def init_adapters(key: jax.Array, adapter: Adapter, sites: Sequence[Site]) -> dict:
    """`{group: {target: factors}}`; each site's key is folded from its name, so its factors do
    not depend on which other layers are adapted."""
    out: dict = {}
    for s in sites:
        site_key = jax.random.fold_in(key, zlib.crc32(f"{s.group}/{s.target}".encode()) >> 1)
        out.setdefault(s.group, {})[s.target] = adapter.init(site_key, s.d_in, s.d_out)
    return out


@dataclasses.dataclass(frozen=True)
class TunedModel:
    """A family's classifier (`module`: params `{'backbone', 'head'}`; a pre-training model
    `{'backbone', 'decoder'}`, a family's `build_mae`) tuned by `method`.

    Hashable, so that it can be a static argument of jitted functions.
    """

    module: nn.Module
    method: Method
    sites: tuple[Site, ...]

    @classmethod
    def create(cls, module: nn.Module, method: Method,
               adaptable: Mapping[str, Target]) -> "TunedModel":
        """Resolve `method`'s targets against `module`'s parameter shapes (none for a
        method that does not use them)."""
        shapes = jax.eval_shape(  # traced, not computed: nothing to compile
            lambda: module.init(jax.random.key(0), example_input(module)))["params"]
        if "backbone" not in shapes:
            raise ValueError(f"{type(module).__name__}'s params have no 'backbone' subtree; a "
                             "model family's classifier has 'backbone' and 'head'")
        if not method.uses_targets:
            return cls(module, method, ())
        sites = find_sites(shapes["backbone"], adaptable, method.targets)
        if method.trains_biases:
            _check_biases(shapes["backbone"], adaptable, sites)
        return cls(module, method, sites)

    def init(self, key: jax.Array, x: jax.Array) -> dict:
        """Fresh parameters: the module's, and the adapters' when the method has factors."""
        params = self.module.init(key, x)["params"]
        if self.method.adapter is not None:
            params = {**params, "adapters": init_adapters(jax.random.fold_in(key, 1),
                                                          self.method.adapter, self.sites)}
        return params

    def apply(self, params: Mapping, x: jax.Array, *, train: bool = False,
              rngs: Mapping | None = None) -> jax.Array:
        """Logits `(N, C)`: the module's forward with each adapted layer's ΔW added."""
        base = {k: v for k, v in params.items() if k != "adapters"}
        if self.method.adapter is None:
            return self.module.apply({"params": base}, x, train=train, rngs=rngs)
        by_path: dict[tuple[str, ...], list[Site]] = {}
        for s in self.sites:
            by_path.setdefault(("backbone", *s.path), []).append(s)
        adapter, adapters = self.method.adapter, params["adapters"]

        def add_adapters(next_fun, args, kwargs, context):
            y = next_fun(*args, **kwargs)
            if context.method_name != "__call__":
                return y
            for s in by_path.get(context.module.path, ()):
                delta = adapter(args[0], adapters[s.group][s.target]).astype(y.dtype)
                y = y + delta if s.part is None else y.at[..., s.columns].add(delta)
            return y

        with nn.intercept_methods(add_adapters):
            return self.module.apply({"params": base}, x, train=train, rngs=rngs)

    def apply_merged(self, params: Mapping, x: jax.Array) -> jax.Array:
        """Logits `(N, C)` in eval mode, as `apply(train=False)`, with each site's ΔW merged
        into its kernel first (`merge`): one matmul per adapted layer instead of the layer's
        and its adapter's. For prediction: on the demo encoder a batch of 256 pixels is about
        12 % faster for KronA+ and 5 % for LoRA. Vmapped over runs, each run holds its own
        merged copy of the adapted kernels while it predicts."""
        return self.module.apply({"params": self.merge(params)}, x, train=False)

    def labels(self, params: Any) -> Any:
        """One of frozen / base / b_side per leaf of `params` (see `hsic_jax.adapters.methods`)."""
        return param_labels(params, self.method, self.sites)

    def merge(self, params: Mapping) -> dict:
        """`params` without `adapters`, each site's ΔW added to its base kernel's columns; the
        untuned module (`module.apply`) then gives the tuned logits."""
        return _merge(self, params)


@jax.jit(static_argnums=0)
def _merge(tuned: TunedModel, params: Mapping) -> dict:
    merged = {k: v for k, v in params.items() if k != "adapters"}
    if tuned.method.adapter is None:
        return merged
    merged["backbone"] = _copy(merged["backbone"])
    for s in tuned.sites:
        dense = merged["backbone"]
        for key in s.path:
            dense = dense[key]
        delta = tuned.method.adapter.delta_kernel(params["adapters"][s.group][s.target])
        dense["kernel"] = dense["kernel"].at[:, s.columns].add(delta.astype(dense["kernel"].dtype))
    return merged


def example_input(module: nn.Module) -> jax.Array:
    """A batch of one zero input `(1, *module.input_shape)` (every family's module has one)."""
    return jnp.zeros((1, *module.input_shape), jnp.float32)


def _copy(tree):
    return {k: _copy(v) for k, v in tree.items()} if isinstance(tree, Mapping) else tree


def _leaves(tree: Mapping, prefix: tuple[str, ...] = ()):
    for key, value in tree.items():
        if isinstance(value, Mapping):
            yield from _leaves(value, (*prefix, key))
        else:
            yield (*prefix, key), value

