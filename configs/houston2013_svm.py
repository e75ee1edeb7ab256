"""houston2013: an RBF-SVM (grid search on the training pixels) on the spectra of single pixels, the classical floor.

    python run.py --config=configs/houston2013_svm.py
"""

from configs import classical


def get_config():
    return classical.get_config("houston2013", "svm")
