"""Pavia University, MambaHSI (whole scene) from scratch with the official recipe and split.

    python run.py --config=configs/pavia_university_mambahsi.py
"""

from configs import mambahsi


def get_config():
    return mambahsi.get_config("pavia_university")
