"""Houston 2013, MambaHSI (whole scene) from scratch with the official recipe and split.

    python run.py --config=configs/houston2013_mambahsi.py
    python run.py --config=configs/houston2013_mambahsi.py:paper   # the paper's training pixels
"""

from configs import mambahsi


def get_config(split: str = "official"):
    return mambahsi.get_config("houston2013", split=split)
