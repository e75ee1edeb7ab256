"""Houston 2013, LoRA+ (LoRA with the B factor's learning rate × λ).

    python run.py --config=configs/houston2013_lora_plus.py
"""

from configs import houston2013


def get_config():
    return houston2013.get_config("lora_plus")
