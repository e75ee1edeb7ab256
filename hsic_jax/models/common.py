"""What the model families share: their config fields as module keyword arguments, the input
shape check, and how a converted checkpoint's architecture differs from the configured one."""

from collections.abc import Callable, Mapping

import jax.numpy as jnp

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def check_input(family: str, x, expected: tuple[int, ...], axes: str) -> None:
    """Refuse an input `x` whose shape is not `(N, *expected)`, naming both and the `axes`."""
    if tuple(x.shape[1:]) != tuple(expected):
        raise ValueError(f"{family} input has shape {tuple(x.shape)}; expected "
                         f"(N, {', '.join(map(str, expected))}) = (N, {axes}) for this model")


def module_fields(cfg: Mapping) -> dict:
    """`config.model` (or a manifest's model fields) as a module's keyword arguments: `name`,
    the family's, dropped; a `dtype` given by name ('float32', 'bfloat16') resolved."""
    fields = {k: v for k, v in cfg.items() if k != "name"}
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
