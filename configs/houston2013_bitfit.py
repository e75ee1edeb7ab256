"""Houston 2013, BitFit (q and v biases + head).

    python run.py --config=configs/houston2013_bitfit.py
"""

from configs import houston2013


def get_config():
    return houston2013.get_config("bitfit")
