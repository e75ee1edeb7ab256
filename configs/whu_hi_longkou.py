"""WHU-Hi-LongKou (Nano-Hyperspec UAV, 9 classes): the paper's settings (section 4.3,
Tables 5, 10, 14)."""

from configs import base


def get_config(method: str):
    config = base.get_config("whu_hi_longkou", method)
    config.data.num_classes = 9
    config.data.patch_size = 27
    config.data.normalize = "minmax"
    config.data.train_per_class = 1000  # 9,000 in all
    base.set_method_fields(config, krona_shapes=((384, 2), (2, 384)),
                           lams={"lora_plus": 1.08, "krona_plus": 1.02})
    return config
