"""Indian Pines, LoKr (factor 8, rank 8, on q and v).

    python run.py --config=configs/indian_pines_lokr.py
"""

from configs import indian_pines


def get_config():
    return indian_pines.get_config("lokr")
