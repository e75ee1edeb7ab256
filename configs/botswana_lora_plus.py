"""Botswana, LoRA+ (LoRA with the B factor's learning rate × λ).

    python run.py --config=configs/botswana_lora_plus.py
"""

from configs import botswana


def get_config():
    return botswana.get_config("lora_plus")
