"""Houston 2013 (CASI-1500, 15 classes): the paper's settings (section 4.3, Tables 3, 8, 14).

The scene's facts come from `hsic_jax.data.scenes.SCENES`: 9-pixel neighbourhood, and the
official GRSS DFC 2013 training and test maps (Table 3: 2,832 / 12,197) instead of counts.
"""

from configs import base


def get_config(method: str):
    config = base.get_config("houston2013", method)
    base.set_method_fields(config, krona_shapes=((16, 48), (48, 16)),
                           lams={"lora_plus": 1.15, "krona_plus": 1.05})
    return config
