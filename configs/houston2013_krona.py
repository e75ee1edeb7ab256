"""Houston 2013, KronA (on q and v).

    python run.py --config=configs/houston2013_krona.py
"""

from configs import houston2013


def get_config():
    return houston2013.get_config("krona")
