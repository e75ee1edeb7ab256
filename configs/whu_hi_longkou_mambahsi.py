"""WHU-Hi-LongKou, MambaHSI (whole scene) from scratch with the official recipe and split.

    python run.py --config=configs/whu_hi_longkou_mambahsi.py
    python run.py --config=configs/whu_hi_longkou_mambahsi.py:paper   # the paper's training pixels
"""

from configs import mambahsi


def get_config(split: str = "official"):
    return mambahsi.get_config("whu_hi_longkou", split=split)
