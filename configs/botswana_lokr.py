"""Botswana, LoKr (factor 8, rank 8, on q and v).

    python run.py --config=configs/botswana_lokr.py
"""

from configs import botswana


def get_config():
    return botswana.get_config("lokr")
