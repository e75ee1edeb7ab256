"""houston2013: a random forest on the spectra of single pixels, the classical floor.

    python run.py --config=configs/houston2013_rf.py
"""

from configs import classical


def get_config():
    return classical.get_config("houston2013", "rf")
