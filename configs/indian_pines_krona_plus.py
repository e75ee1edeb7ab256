"""Indian Pines, KronA+ (KronA with the B factor's learning rate × λ).

    python run.py --config=configs/indian_pines_krona_plus.py
"""

from configs import indian_pines


def get_config():
    return indian_pines.get_config("krona_plus")
