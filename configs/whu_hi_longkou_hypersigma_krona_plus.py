"""WHU-Hi-LongKou, HyperSIGMA (ViT-B) fine-tuned with KronA+ (the paper's KronA shapes and λ for this scene, on q and v of both encoders).

    python run.py --config=configs/whu_hi_longkou_hypersigma_krona_plus.py
"""

from configs import hypersigma


def get_config():
    return hypersigma.get_config("whu_hi_longkou", "krona_plus")
