"""Botswana, HyperSIGMA (ViT-B) fine-tuned with KronA+ (the paper's KronA shapes and λ for this scene, on q and v of both encoders).

    python run.py --config=configs/botswana_hypersigma_krona_plus.py
"""

from configs import hypersigma


def get_config():
    return hypersigma.get_config("botswana", "krona_plus")
