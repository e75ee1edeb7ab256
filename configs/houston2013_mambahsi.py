"""Houston 2013, MambaHSI (whole scene) from scratch with the official recipe and split.

    python run.py --config=configs/houston2013_mambahsi.py
"""

from configs import mambahsi


def get_config():
    return mambahsi.get_config("houston2013")
