"""pavia_university: a random forest on the spectra of single pixels, the classical floor.

    python run.py --config=configs/pavia_university_rf.py
"""

from configs import classical


def get_config():
    return classical.get_config("pavia_university", "rf")
