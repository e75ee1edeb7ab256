"""Pavia University, LoRA (rank 4, alpha 4, on q and v).

    python run.py --config=configs/pavia_university_lora.py
"""

from configs import pavia_university


def get_config():
    return pavia_university.get_config("lora")
