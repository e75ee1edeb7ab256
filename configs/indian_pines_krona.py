"""Indian Pines, KronA (on q and v).

    python run.py --config=configs/indian_pines_krona.py
"""

from configs import indian_pines


def get_config():
    return indian_pines.get_config("krona")
