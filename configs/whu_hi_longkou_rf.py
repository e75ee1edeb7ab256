"""whu_hi_longkou: a random forest on the spectra of single pixels, the classical floor.

    python run.py --config=configs/whu_hi_longkou_rf.py
"""

from configs import classical


def get_config():
    return classical.get_config("whu_hi_longkou", "rf")
