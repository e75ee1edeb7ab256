"""WHU-Hi-LongKou, KronA+ (KronA with the B factor's learning rate × λ).

    python run.py --config=configs/whu_hi_longkou_krona_plus.py
"""

from configs import whu_hi_longkou


def get_config():
    return whu_hi_longkou.get_config("krona_plus")
