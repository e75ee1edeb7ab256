"""WHU-Hi-LongKou, KronA (on q and v).

    python run.py --config=configs/whu_hi_longkou_krona.py
"""

from configs import whu_hi_longkou


def get_config():
    return whu_hi_longkou.get_config("krona")
