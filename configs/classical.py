"""The classical baselines on the spectra of single pixels: an RBF-SVM and a random forest.

They are the floor every deep row must beat. A dataset's config is one line over
`get_config(dataset, model)`: the same scene, split and report rows as the paper's
configs, the pixel's own spectrum only (a 1-pixel neighbourhood, so no test pixel is seen
in training: leakage 0), all raw bands (`data.pca=None`; `--config.data.pca=12` for the
paper's PCA), standardised per band.
"""

from configs import base

# The grid the SVM searches on the training pixels (stratified folds), and the forest's size.
MODELS = {
    "svm": dict(name="svm", C=(1.0, 10.0, 100.0, 1000.0), gamma=("scale", 0.01, 0.1, 1.0),
                folds=3),
    "rf": dict(name="rf", trees=200, max_features="sqrt"),
}


def get_config(dataset: str, model: str):
    config = base.get_config(dataset, "fft")
    config.model = MODELS[model]
    config.init = "random"
    config.data.update(dict(neighborhood=1, input_size=1, pca=None, normalize="zscore"))
    return config
