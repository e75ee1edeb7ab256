"""Pavia University, KronA+ (KronA with the B factor's learning rate × λ).

    python run.py --config=configs/pavia_university_krona_plus.py
"""

from configs import pavia_university


def get_config():
    return pavia_university.get_config("krona_plus")
