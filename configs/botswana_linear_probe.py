"""Botswana, a linear probe (head only).

    python run.py --config=configs/botswana_linear_probe.py
"""

from configs import botswana


def get_config():
    return botswana.get_config("linear_probe")
