"""WHU-Hi-LongKou, LoRA (rank 4, alpha 4, on q and v).

    python run.py --config=configs/whu_hi_longkou_lora.py
"""

from configs import whu_hi_longkou


def get_config():
    return whu_hi_longkou.get_config("lora")
