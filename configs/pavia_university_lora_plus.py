"""Pavia University, LoRA+ (LoRA with the B factor's learning rate × λ).

    python run.py --config=configs/pavia_university_lora_plus.py
"""

from configs import pavia_university


def get_config():
    return pavia_university.get_config("lora_plus")
