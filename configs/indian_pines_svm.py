"""indian_pines: an RBF-SVM (grid search on the training pixels) on the spectra of single pixels, the classical floor.

    python run.py --config=configs/indian_pines_svm.py
"""

from configs import classical


def get_config():
    return classical.get_config("indian_pines", "svm")
