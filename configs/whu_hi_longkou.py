"""WHU-Hi-LongKou (Nano-Hyperspec UAV, 9 classes): the paper's settings (section 4.3,
Tables 5, 10, 14).

The scene's facts come from `hsic_jax.data.scenes.SCENES`: 27-pixel neighbourhood, min-max
normalisation, 1,000 training pixels per class (9,000 in all).
"""

from configs import base


def get_config(method: str):
    config = base.get_config("whu_hi_longkou", method)
    base.set_method_fields(config, krona_shapes=((384, 2), (2, 384)),
                           lams={"lora_plus": 1.08, "krona_plus": 1.02})
    return config
