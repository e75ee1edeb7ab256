"""Indian Pines, LoRA (rank 4, alpha 4, on q and v).

    python run.py --config=configs/indian_pines_lora.py
"""

from configs import indian_pines


def get_config():
    return indian_pines.get_config("lora")
