"""Botswana, LoRA (rank 4, alpha 4, on q and v).

    python run.py --config=configs/botswana_lora.py
"""

from configs import botswana


def get_config():
    return botswana.get_config("lora")
