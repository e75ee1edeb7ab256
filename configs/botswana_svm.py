"""botswana: an RBF-SVM (grid search on the training pixels) on the spectra of single pixels, the classical floor.

    python run.py --config=configs/botswana_svm.py
"""

from configs import classical


def get_config():
    return classical.get_config("botswana", "svm")
