"""WHU-Hi-LongKou, HyperSIGMA (ViT-B) fine-tuned with LoRA (rank 4 on q and v of both encoders).

    python run.py --config=configs/whu_hi_longkou_hypersigma_lora.py
"""

from configs import hypersigma


def get_config():
    return hypersigma.get_config("whu_hi_longkou", "lora")
