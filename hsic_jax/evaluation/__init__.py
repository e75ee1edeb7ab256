"""Evaluation of a trained model. One module per concern:

  metrics  confusion matrix accumulated in JAX (`update_confusion`, `confusion_matrix`) and
           `summarize` -> OA, AA, kappa, per-class accuracy
  predict  metrics of every seed on a pixel set, the scene's class and confidence maps
  results  the content of `results.json`: metrics over seeds, protocol, leakage
  maps     figures: `save_classification_map`, `save_confidence_map`, `save_training_curves`,
           `save_plot_oa_vs_params`

The paper-style tables of finished runs are `python -m hsic_jax.report` (hsic_jax/report.py).
"""
