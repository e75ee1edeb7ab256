"""Botswana (Hyperion, 14 classes): the paper's settings (section 4.3, Tables 4, 9, 14)."""

from configs import base


def get_config(method: str):
    config = base.get_config("botswana", method)
    config.data.num_classes = 14
    config.data.patch_size = 9
    config.data.normalize = "bigearthnet"
    config.data.train_per_class = 30  # 420 in all
    base.set_method_fields(config, krona_shapes=((384, 2), (2, 384)),
                           lams={"lora_plus": 1.15, "krona_plus": 1.5})
    return config
