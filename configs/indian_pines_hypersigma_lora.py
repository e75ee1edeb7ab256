"""Indian Pines, HyperSIGMA (ViT-B) fine-tuned with LoRA (rank 4 on q and v of both encoders).

    python run.py --config=configs/indian_pines_hypersigma_lora.py
"""

from configs import hypersigma


def get_config():
    return hypersigma.get_config("indian_pines", "lora")
