"""Houston 2013, SpectralFormer (patch-wise, CAF) from scratch with the official recipe.

    python run.py --config=configs/houston2013_spectralformer.py            # the paper's epochs
    python run.py --config=configs/houston2013_spectralformer.py:official   # the official README's
"""

from configs import spectralformer


def get_config(epochs: str = "paper"):
    return spectralformer.get_config("houston2013", epochs=epochs)
