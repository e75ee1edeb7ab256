"""What the model families share: their config fields as module keyword arguments, the input
shape check, how a converted checkpoint's architecture differs from the configured one, the
pre-norm transformer block (`pre_norm_block`), the exact GELU (`gelu`) and the matmul of their
dense layers (`dense_dot_general`)."""

from collections.abc import Callable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def check_input(family: str, x, expected: tuple[int, ...], axes: str) -> None:
    """Refuse an input `x` whose shape is not `(N, *expected)`, naming both and the `axes`."""
    if tuple(x.shape[1:]) != tuple(expected):
        raise ValueError(f"{family} input has shape {tuple(x.shape)}; expected "
                         f"(N, {', '.join(map(str, expected))}) = (N, {axes}) for this model")


def module_fields(cfg: Mapping, variants: Mapping[str, Mapping] | None = None) -> dict:
    """`config.model` (or a manifest's model fields) as a module's keyword arguments: `name`,
    the family's, dropped; a `dtype` given by name ('float32', 'bfloat16') resolved; with a
    family's `variants` (its presets by name), a `variant` field replaced by its preset's
    fields, under those `cfg` gives."""
    fields = {k: v for k, v in cfg.items() if k != "name"}
    variant = fields.pop("variant", None) if variants is not None else None
    if variant is not None:
        if variant not in variants:
            raise ValueError(f"model variant {variant!r} is not one of {sorted(variants)}")
        fields = {**variants[variant], **fields}
    if isinstance(fields.get("dtype"), str):
        if fields["dtype"] not in DTYPES:
            raise ValueError(f"model dtype {fields['dtype']!r} is not one of {sorted(DTYPES)}")
        fields["dtype"] = DTYPES[fields["dtype"]]
    return fields


def architecture_mismatch(converted: Mapping, module, fields, fix: Callable[[str, object], str],
                          convert_flags: Mapping[str, str] | None = None) -> str | None:
    """How a checkpoint converted with the model fields `converted` differs from `module` in
    `fields`, with `fix(field, checkpoint_value)` (the config setting that makes them agree)
    for each; when every difference has a converter flag (`convert_flags`, field → flag), the
    reconversion that fits the config instead. None when they agree."""
    def norm(v):  # a manifest's JSON list is the module's tuple
        return tuple(v) if isinstance(v, (list, tuple)) else v

    differ = {k: (norm(converted.get(k)), norm(getattr(module, k))) for k in fields
              if norm(converted.get(k)) != norm(getattr(module, k))}
    if not differ:
        return None
    flags = [f"{convert_flags[k]} {c}" for k, (_, c) in differ.items() if k in (convert_flags or {})]
    hint = (f"; or convert again with {' '.join(flags)} to fit the config"
            if flags and len(flags) == len(differ) else "")
    fixes = " ".join(fix(k, v) for k, (v, _) in differ.items())
    return f"(field: (checkpoint, config)): {differ}; set {fixes}{hint}"


def config_fix(field: str, value) -> str:
    """The config setting that gives model field `field` the checkpoint's `value`: the bands
    are the PCA components (or a scene's raw bands), other fields are `config.model`'s."""
    if field == "bands":
        return f"--config.data.pca={value} (or None for a scene of {value} bands)"
    return f"--config.model.{field}={value!r}"


def pre_norm_block(x: jax.Array, attn: nn.Module, mlp: nn.Module,
                   norm: Callable[[str], nn.Module], drop_path: float, train: bool) -> jax.Array:
    """A pre-norm transformer block `(N, S, D) -> (N, S, D)`, called inside the block's compact
    `__call__`: x + attn(norm1(x)), then + mlp(norm2(·)), with stochastic depth on both
    residual branches (DropPath: dropout of a whole branch per sample, rescaled by 1/(1-p));
    `norm(name)` makes the block's norms, `norm1` and `norm2`."""
    drop = nn.Dropout(drop_path, broadcast_dims=(1, 2), deterministic=not train)
    x = x + drop(attn(norm("norm1")(x)))
    return x + drop(mlp(norm("norm2")(x)))


def transformer_activation_size(tokens: int, width: int, heads: int, hidden: int) -> int:
    """Floats of one input's largest activation in a transformer: its attention scores
    (`heads × tokens²`) or its widest per-token layer (`tokens ×` the widest of `width` and
    `hidden`, the MLP's or fused projection's)."""
    return max(heads * tokens**2, tokens * max(width, hidden))


def gelu(x: jax.Array) -> jax.Array:
    """Exact GELU as torch computes it, `x · Φ(x)` through erf: on XLA's CPU backend about 8 %
    of SpectralGPT's demo step faster than `nn.gelu(approximate=False)`, which goes through
    erfc (the two differ by rounding only)."""
    return 0.5 * x * (1.0 + jax.lax.erf(x * np.sqrt(0.5).astype(x.dtype)))


@jax.custom_vjp
def matmul(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """`x (…, in) @ kernel (in, out)`, whose backward pass computes the kernel's gradient only
    when it is trained, as the 2-D `xᵀ @ dy` of the flattened rows (`_matmul_bwd`)."""
    return jnp.matmul(x, kernel)


def _matmul_fwd(x, kernel):
    """Keeps what the backward pass needs: `x` for a trained kernel's gradient, the kernel for
    `x`'s (`symbolic_zeros`: a frozen kernel has no gradient, not even one computed and
    dropped)."""
    return (jnp.matmul(x.value, kernel.value),
            (x.value if kernel.perturbed else None, kernel.value if x.perturbed else None))


def _matmul_bwd(saved, dy):
    x, kernel = saved
    if isinstance(dy, jax.custom_derivatives.SymbolicZero):
        return None, None
    dx = None if kernel is None else jnp.matmul(dy, kernel.T)
    # The weight gradient as one 2-D dot of the flattened rows, xᵀ @ dy, which XLA:CPU runs
    # on its fast matmul library (the dot_general that autodiff of a 3-D `x @ kernel` gives
    # contracts two non-minor axes and goes to its generic one).
    dkernel = None if x is None else _weight_gradient(
        x.reshape(-1, x.shape[-1]), dy.reshape(-1, dy.shape[-1])).astype(x.dtype)
    return dx, dkernel


def _weight_gradient(x: jax.Array, dy: jax.Array) -> jax.Array:
    """`xᵀ @ dy (in, out)` of rows `x (M, in)` and `dy (M, out)`. The transposed operand is
    materialised (a copy that XLA fuses with whatever computes it), so the narrower one is
    transposed: for an MLP's fc2 `(dyᵀ @ x)ᵀ` moves 4096 × 192 values instead of recomputing
    GELU into a 768 × 4096 transposed copy (the cpu-small FFT step 1.09× faster,
    `bench/results/ab_weight_gradient.json`)."""
    if dy.shape[1] < x.shape[1]:
        return jnp.matmul(dy.T, x).T
    return jnp.matmul(x.T, dy)


matmul.defvjp(_matmul_fwd, _matmul_bwd, symbolic_zeros=True)


def dense_dot_general(x, kernel, dimension_numbers, precision=None,
                      preferred_element_type=None):
    """`nn.Dense(dot_general=dense_dot_general)`: `x (…, in) @ kernel (in, out)`, the same
    numbers as `jax.lax.dot_general`, with a backward pass that computes the weight gradient as
    the 2-D `xᵀ @ dy` of the flattened rows (`_matmul_bwd`). Other contractions, precisions or
    output types go to `jax.lax.dot_general` itself."""
    (contract_x, contract_k), batch = dimension_numbers
    if (tuple(contract_x), tuple(contract_k), batch) != ((x.ndim - 1,), (0,), ((), ())) or (
            precision is not None or preferred_element_type is not None or kernel.ndim != 2):
        return jax.lax.dot_general(x, kernel, dimension_numbers, precision=precision,
                                   preferred_element_type=preferred_element_type)
    return matmul(x, kernel)
