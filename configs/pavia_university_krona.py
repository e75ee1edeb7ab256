"""Pavia University, KronA (on q and v).

    python run.py --config=configs/pavia_university_krona.py
"""

from configs import pavia_university


def get_config():
    return pavia_university.get_config("krona")
