"""Botswana, KronA+ (KronA with the B factor's learning rate × λ).

    python run.py --config=configs/botswana_krona_plus.py
"""

from configs import botswana


def get_config():
    return botswana.get_config("krona_plus")
