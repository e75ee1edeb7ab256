"""Hyperspectral data pipeline. One module per concern:

  scenes      the five benchmark scenes (registry `SCENES`) and user scenes: `load_scene` -> `Scene`
  io          reading arrays from .mat (v5/v7/v7.3), .npy/.npz and GeoTIFF; `DataError`; atomic writes
  split       seeded, disjoint train/validation/test splits with per-class tables: `make_split` ->
              `Split`; `leakage` (test pixels inside a training window)
  preprocess  PCA (`fit_pca` -> `PCA`), `normalize` (BigEarthNet / min-max / z-score), `prepare`,
              fitted on the scene or on given pixels
  patches     reflect padding, jitted patch gather, resizing (bilinear, PyTorch bicubic),
              fixed-size batches over a scene
  augment     jitted flips, radiation noise and mixture noise, a key per sample; mixup / cutmix
  pipeline    a scene prepared for a run: split, preprocessed and padded per seed (`load_data`)
  download    `python -m hsic_jax.data.download NAME --dir DIR`
"""
