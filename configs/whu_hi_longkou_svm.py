"""whu_hi_longkou: an RBF-SVM (grid search on the training pixels) on the spectra of single pixels, the classical floor.

    python run.py --config=configs/whu_hi_longkou_svm.py
"""

from configs import classical


def get_config():
    return classical.get_config("whu_hi_longkou", "svm")
