"""PEFT methods behind one interface (`base.Adapter`), applied to any model family from outside
(`tuned.TunedModel`), with method labels, merge and export."""

from hsic_jax.adapters.base import Adapter
from hsic_jax.adapters.krona import KronA, kron_matmul
from hsic_jax.adapters.lokr import LoKr, factorization
from hsic_jax.adapters.lora import LoRA
from hsic_jax.adapters.methods import (B_SIDE, BASE, FROZEN, LABELS, METHODS, Method,
                                       method_from_config, param_labels)
from hsic_jax.adapters.tuned import Site, Target, TunedModel, find_sites, init_adapters

__all__ = ["B_SIDE", "BASE", "FROZEN", "LABELS", "METHODS", "Adapter", "KronA", "LoKr", "LoRA",
           "Method", "Site", "Target", "TunedModel", "factorization", "find_sites",
           "init_adapters", "kron_matmul", "method_from_config", "param_labels"]
