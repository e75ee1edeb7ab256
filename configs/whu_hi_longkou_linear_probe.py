"""WHU-Hi-LongKou, a linear probe (head only).

    python run.py --config=configs/whu_hi_longkou_linear_probe.py
"""

from configs import whu_hi_longkou


def get_config():
    return whu_hi_longkou.get_config("linear_probe")
