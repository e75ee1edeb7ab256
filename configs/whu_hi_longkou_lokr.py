"""WHU-Hi-LongKou, LoKr (factor 8, rank 8, on q and v).

    python run.py --config=configs/whu_hi_longkou_lokr.py
"""

from configs import whu_hi_longkou


def get_config():
    return whu_hi_longkou.get_config("lokr")
