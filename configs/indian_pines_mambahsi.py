"""Indian Pines, MambaHSI (whole scene) from scratch with the official recipe and split.

    python run.py --config=configs/indian_pines_mambahsi.py
"""

from configs import mambahsi


def get_config():
    return mambahsi.get_config("indian_pines")
