"""Evaluation of a trained model. One module per concern:

  metrics  `confusion_matrix` of predictions and `summarize` -> OA, AA, kappa, per-class
           accuracy
  predict  every seed's predictions of a pixel set in one compiled program, their metrics,
           the scene's class and confidence maps from the same final predictions
  results  the content of `results.json`: metrics over seeds, protocol, leakage
  maps     figures: `save_classification_map`, `save_confidence_map`, `save_training_curves`,
           `save_plot_oa_vs_params`

The paper-style tables of finished runs are `python -m hsic_jax.report` (hsic_jax/report.py).
"""
