"""Botswana, BitFit (q and v biases + head).

    python run.py --config=configs/botswana_bitfit.py
"""

from configs import botswana


def get_config():
    return botswana.get_config("bitfit")
