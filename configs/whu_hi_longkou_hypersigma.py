"""WHU-Hi-LongKou, HyperSIGMA (ViT-B, 33 × 33 × 30) fine-tuned with the official recipe.

    python run.py --config=configs/whu_hi_longkou_hypersigma.py
"""

from configs import hypersigma


def get_config():
    return hypersigma.get_config("whu_hi_longkou")
