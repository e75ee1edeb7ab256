"""Pavia University (ROSIS, 9 classes): the paper's settings (section 4.3, Tables 2, 7, 14).

The scene's facts come from `hsic_jax.data.scenes.SCENES` (9-pixel neighbourhood, 3,921
training pixels: the paper's Table 2 counts; the paper used the standard fixed training set,
which the public PaviaU files do not carry, so these counts are drawn at random per seed).
"""

from configs import base


def get_config(method: str):
    config = base.get_config("pavia_university", method)
    base.set_method_fields(config, krona_shapes=((24, 32), (32, 24)),
                           lams={"lora_plus": 1.3, "krona_plus": 8.0})
    return config
