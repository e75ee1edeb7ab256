"""The demo's fine-tuning on the encoder that `configs/pretrain_demo.py` pre-trains, with any method.

    python pretrain.py --config=configs/pretrain_demo.py          # once: workdirs/pretrain_demo/
    python run.py --config=configs/demo_pretrained.py:lora        # METHOD[,random]

The demo's scene, split (the paper's 50/15 on Indian Pines), inputs (PCA 12, 15-pixel
neighbourhoods resized to 16 × 16), encoder (3 blocks, 96 wide) and recipe (60 epochs, AdamW
1e-3, cosine), with the pre-trained separable position tables (`model.pos_embed`), and the
methods' settings of `configs/base.py` scaled to the 96-wide encoder: KronA's factors
(48, 2) ⊗ (2, 48) (the paper's (384, 2) ⊗ (2, 384) of ViT-B, a 768 → 96 layer has the same
shape ratio) and Indian Pines' λ. `METHOD,random` trains the same model from a random
backbone instead: the comparison that tells what pre-training gives each method.
"""

from configs import base, demo

PRETRAINED_DIR = "workdirs/pretrain_demo/pretrained"


def get_config(arg: str = "krona_plus"):
    method, _, init = arg.partition(",")
    init = init or "pretrained"
    if init not in ("pretrained", "random"):
        raise ValueError(f"configs/demo_pretrained.py:{arg}: expected METHOD or METHOD,random")
    config = demo.get_config()
    config.workdir = f"workdirs/demo_{init}_{method}"
    config.init = init
    config.pretrained_dir = PRETRAINED_DIR
    config.model.pos_embed = "separable"
    config.method = base.get_config("indian_pines", method).method
    base.set_method_fields(config, krona_shapes=((48, 2), (2, 48)),
                           lams={"lora_plus": 1.025, "krona_plus": 1.02})
    return config
