"""Pavia University, BitFit (q and v biases + head).

    python run.py --config=configs/pavia_university_bitfit.py
"""

from configs import pavia_university


def get_config():
    return pavia_university.get_config("bitfit")
