"""WHU-Hi-LongKou, BitFit (q and v biases + head).

    python run.py --config=configs/whu_hi_longkou_bitfit.py
"""

from configs import whu_hi_longkou


def get_config():
    return whu_hi_longkou.get_config("bitfit")
