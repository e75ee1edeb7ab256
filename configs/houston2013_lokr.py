"""Houston 2013, LoKr (factor 8, rank 8, on q and v).

    python run.py --config=configs/houston2013_lokr.py
"""

from configs import houston2013


def get_config():
    return houston2013.get_config("lokr")
