"""Botswana, KronA (on q and v).

    python run.py --config=configs/botswana_krona.py
"""

from configs import botswana


def get_config():
    return botswana.get_config("krona")
