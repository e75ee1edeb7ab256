"""Pavia University, HyperSIGMA (ViT-B) fine-tuned with KronA+ (the paper's KronA shapes and λ for this scene, on q and v of both encoders).

    python run.py --config=configs/pavia_university_hypersigma_krona_plus.py
"""

from configs import hypersigma


def get_config():
    return hypersigma.get_config("pavia_university", "krona_plus")
