"""Houston 2013 (CASI-1500, 15 classes): the paper's settings (section 4.3, Tables 3, 8, 14)."""

from configs import base

# The paper's training pixels per class (Table 3: the official GRSS DFC 2013 split, 2,832).
TRAIN_PER_CLASS = {
    "Healthy grass": 198, "Stressed grass": 190, "Synthetic grass": 192, "Trees": 188,
    "Soil": 186, "Water": 182, "Residential": 196, "Commercial": 191, "Road": 193,
    "Highway": 191, "Railway": 181, "Parking Lot 1": 192, "Parking Lot 2": 184,
    "Tennis Court": 181, "Running Track": 187}


def get_config(method: str = "fft"):
    config = base.get_config("houston2013", method)
    config.data.num_classes = 15
    config.data.patch_size = 9
    config.data.normalize = "bigearthnet"
    config.data.train_per_class = dict(TRAIN_PER_CLASS)
    base.set_method_fields(config, krona_shapes=((16, 48), (48, 16)),
                           lams={"lora_plus": 1.15, "krona_plus": 1.05})
    return config
