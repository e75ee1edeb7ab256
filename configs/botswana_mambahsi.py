"""Botswana, MambaHSI (whole scene) from scratch with the official recipe and split.

    python run.py --config=configs/botswana_mambahsi.py
    python run.py --config=configs/botswana_mambahsi.py:paper   # the paper's training pixels
"""

from configs import mambahsi


def get_config(split: str = "official"):
    return mambahsi.get_config("botswana", split=split)
