"""Pavia University, SpectralFormer (patch-wise, CAF) from scratch with the official recipe.

    python run.py --config=configs/pavia_university_spectralformer.py
"""

from configs import spectralformer


def get_config():
    return spectralformer.get_config("pavia_university")
