"""Botswana, full fine-tuning.

    python run.py --config=configs/botswana_fft.py
"""

from configs import botswana


def get_config():
    return botswana.get_config("fft")
