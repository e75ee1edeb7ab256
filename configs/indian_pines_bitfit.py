"""Indian Pines, BitFit (q and v biases + head).

    python run.py --config=configs/indian_pines_bitfit.py
"""

from configs import indian_pines


def get_config():
    return indian_pines.get_config("bitfit")
