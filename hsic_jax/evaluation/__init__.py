"""Evaluation of a trained model. One module per concern:

  metrics  confusion matrix accumulated in JAX (`update_confusion`, `confusion_matrix`) and
           `summarize` -> OA, AA, kappa, per-class accuracy
  maps     PNG figures: `save_classification_map`, `save_training_curves`, `save_plot_oa_vs_params`

The paper-style tables of finished runs are `python -m hsic_jax.report` (hsic_jax/report.py).
"""
