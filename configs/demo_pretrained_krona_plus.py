"""The demo fine-tuned with KronA+ on its self-pre-trained encoder (`configs/pretrain_demo.py`).

    python pretrain.py --config=configs/pretrain_demo.py
    python run.py --config=configs/demo_pretrained_krona_plus.py
"""

from configs import demo_pretrained


def get_config():
    return demo_pretrained.get_config("krona_plus")
