"""Botswana (Hyperion, 14 classes): the paper's settings (section 4.3, Tables 4, 9, 14).

The scene's facts come from `hsic_jax.data.scenes.SCENES`: 9-pixel neighbourhood, 30
training pixels per class (420 in all).
"""

from configs import base


def get_config(method: str):
    config = base.get_config("botswana", method)
    base.set_method_fields(config, krona_shapes=((384, 2), (2, 384)),
                           lams={"lora_plus": 1.15, "krona_plus": 1.5})
    return config
