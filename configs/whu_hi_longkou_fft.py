"""WHU-Hi-LongKou, full fine-tuning.

    python run.py --config=configs/whu_hi_longkou_fft.py
"""

from configs import whu_hi_longkou


def get_config():
    return whu_hi_longkou.get_config("fft")
