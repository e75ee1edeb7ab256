"""Pavia University, HyperSIGMA (ViT-B, 33 × 33 × 30) fine-tuned with the official recipe.

    python run.py --config=configs/pavia_university_hypersigma.py
"""

from configs import hypersigma


def get_config():
    return hypersigma.get_config("pavia_university")
