"""Indian Pines, full fine-tuning.

    python run.py --config=configs/indian_pines_fft.py
"""

from configs import indian_pines


def get_config():
    return indian_pines.get_config("fft")
