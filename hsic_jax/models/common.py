"""What the model families share: their config fields as module keyword arguments."""

from collections.abc import Mapping

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
