"""botswana: a random forest on the spectra of single pixels, the classical floor.

    python run.py --config=configs/botswana_rf.py
"""

from configs import classical


def get_config():
    return classical.get_config("botswana", "rf")
