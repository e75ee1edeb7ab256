"""Houston 2013, SpectralFormer (patch-wise, CAF) from scratch with the official recipe.

    python run.py --config=configs/houston2013_spectralformer.py
"""

from configs import spectralformer


def get_config():
    return spectralformer.get_config("houston2013")
