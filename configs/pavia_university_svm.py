"""pavia_university: an RBF-SVM (grid search on the training pixels) on the spectra of single pixels, the classical floor.

    python run.py --config=configs/pavia_university_svm.py
"""

from configs import classical


def get_config():
    return classical.get_config("pavia_university", "svm")
