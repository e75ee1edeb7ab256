"""WHU-Hi-LongKou, SpectralFormer (patch-wise, CAF) from scratch with the official recipe.

    python run.py --config=configs/whu_hi_longkou_spectralformer.py
"""

from configs import spectralformer


def get_config():
    return spectralformer.get_config("whu_hi_longkou")
