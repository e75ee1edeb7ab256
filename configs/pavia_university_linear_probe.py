"""Pavia University, a linear probe (head only).

    python run.py --config=configs/pavia_university_linear_probe.py
"""

from configs import pavia_university


def get_config():
    return pavia_university.get_config("linear_probe")
