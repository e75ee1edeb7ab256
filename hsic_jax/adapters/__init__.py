"""PEFT methods behind one interface (`base.Adapter`), method labels, merge and export."""

from hsic_jax.adapters.base import LAYER_PATHS, LAYERS, Adapter, init_adapters
from hsic_jax.adapters.krona import KronA, kron_matmul
from hsic_jax.adapters.lokr import LoKr, factorization
from hsic_jax.adapters.lora import LoRA
from hsic_jax.adapters.methods import (B_SIDE, BASE, FROZEN, LABELS, METHODS, Method,
                                       method_from_config, param_labels)

__all__ = ["B_SIDE", "BASE", "FROZEN", "LABELS", "LAYERS", "LAYER_PATHS", "METHODS", "Adapter",
           "KronA", "LoKr", "LoRA", "Method", "factorization", "init_adapters", "kron_matmul",
           "method_from_config", "param_labels"]
