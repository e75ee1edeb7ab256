"""Pavia University, full fine-tuning.

    python run.py --config=configs/pavia_university_fft.py
"""

from configs import pavia_university


def get_config():
    return pavia_university.get_config("fft")
