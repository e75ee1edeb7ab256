"""Houston 2013, LoRA (rank 4, alpha 4, on q and v).

    python run.py --config=configs/houston2013_lora.py
"""

from configs import houston2013


def get_config():
    return houston2013.get_config("lora")
