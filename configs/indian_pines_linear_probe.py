"""Indian Pines, a linear probe (head only).

    python run.py --config=configs/indian_pines_linear_probe.py
"""

from configs import indian_pines


def get_config():
    return indian_pines.get_config("linear_probe")
