"""Pavia University, LoKr (factor 8, rank 8, on q and v).

    python run.py --config=configs/pavia_university_lokr.py
"""

from configs import pavia_university


def get_config():
    return pavia_university.get_config("lokr")
