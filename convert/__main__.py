"""Convert a PyTorch checkpoint of a model family: `python -m convert FAMILY [flags]`.

    python -m convert spectralgpt --checkpoint SpectralGPT+.pth --out checkpoints/spectralgpt_plus_32
    python -m convert spectralformer --checkpoint log/SpectralFormer_patch_indian.pt \\
        --out checkpoints/spectralformer_patch_indian --patches 7 --mode CAF

A family's converter is the module `convert/FAMILY.py` with a `main(argv)` (the family being one
of `hsic_jax.models.FAMILIES`); this finds them. `convert/common.py` is what they share.
`python -m convert FAMILY --help` lists a family's flags; `python -m convert.spectralgpt`
works as before.
"""

import importlib
import importlib.util
import sys

from hsic_jax import models

# The model families with a converter module.
FAMILIES = tuple(sorted(f for f in models.FAMILIES if importlib.util.find_spec(f"convert.{f}")))


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    usage = (f"usage: python -m convert {{{','.join(FAMILIES)}}} [flags]  "
             "(python -m convert FAMILY --help lists them)")
    if not argv or argv[0] in ("-h", "--help"):
        print(usage, file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    if argv[0] not in FAMILIES:
        print(f"error: {argv[0]!r} is not a family the converter knows: {', '.join(FAMILIES)}\n"
              f"{usage}", file=sys.stderr)
        return 2
    return importlib.import_module(f"convert.{argv[0]}").main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
