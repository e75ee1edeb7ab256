"""Indian Pines (AVIRIS, 16 classes): the paper's settings (section 4.3, Tables 1, 6, 14).

The scene's facts (classes, 15-pixel neighbourhood, BigEarthNet standardisation, 50 training
pixels per class and 15 for the three smallest, 695 in all) come from
`hsic_jax.data.scenes.SCENES`; this module adds the methods' per-dataset settings.
"""

from configs import base


def get_config(method: str):
    config = base.get_config("indian_pines", method)
    base.set_method_fields(config, krona_shapes=((384, 2), (2, 384)),
                           lams={"lora_plus": 1.025, "krona_plus": 1.02})
    return config
