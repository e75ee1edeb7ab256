"""Indian Pines, HyperSIGMA (ViT-B) fine-tuned with KronA+ (the paper's KronA shapes and λ for this scene, on q and v of both encoders).

    python run.py --config=configs/indian_pines_hypersigma_krona_plus.py
"""

from configs import hypersigma


def get_config():
    return hypersigma.get_config("indian_pines", "krona_plus")
