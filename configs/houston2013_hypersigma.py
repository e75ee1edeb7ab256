"""Houston 2013, HyperSIGMA (ViT-B, 33 × 33 × 30) fine-tuned with the official recipe.

    python run.py --config=configs/houston2013_hypersigma.py
"""

from configs import hypersigma


def get_config():
    return hypersigma.get_config("houston2013")
