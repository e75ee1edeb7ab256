"""indian_pines: a random forest on the spectra of single pixels, the classical floor.

    python run.py --config=configs/indian_pines_rf.py
"""

from configs import classical


def get_config():
    return classical.get_config("indian_pines", "rf")
