"""Houston 2013, a linear probe (head only).

    python run.py --config=configs/houston2013_linear_probe.py
"""

from configs import houston2013


def get_config():
    return houston2013.get_config("linear_probe")
