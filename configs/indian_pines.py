"""Indian Pines (AVIRIS, 16 classes): the paper's settings (section 4.3, Tables 1, 6, 14)."""

from configs import base

CLASS_NAMES = (
    "Alfalfa", "Corn-notill", "Corn-mintill", "Corn", "Grass-pasture", "Grass-trees",
    "Grass-pasture-mowed", "Hay-windrowed", "Oats", "Soybean-notill", "Soybean-mintill",
    "Soybean-clean", "Wheat", "Woods", "Buildings-Grass-Trees-Drives", "Stone-Steel-Towers")
SMALL_CLASSES = ("Alfalfa", "Grass-pasture-mowed", "Oats")  # 46, 28 and 20 labelled pixels


def get_config(method: str):
    config = base.get_config("indian_pines", method)
    config.data.num_classes = 16
    config.data.patch_size = 15
    config.data.normalize = "bigearthnet"
    # 50 training pixels per class, 15 for the three smallest (695 in all).
    config.data.train_per_class = {c: 15 if c in SMALL_CLASSES else 50 for c in CLASS_NAMES}
    base.set_method_fields(config, krona_shapes=((384, 2), (2, 384)),
                           lams={"lora_plus": 1.025, "krona_plus": 1.02})
    return config
