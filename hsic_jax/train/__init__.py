"""Training. One module per concern:

  optimizer   labels (frozen / base / b_side), warm-up + cosine schedule, multi_transform AdamW,
              layer-wise lr decay, `freeze` (no frozen weight gradients) and `keep_frozen`
  step        the jitted train step (on-device batches, augmentation, mixup/cutmix, loss, update)
              and `predict`
  selection   the best validation state (`select='best_val'`): trainable leaves kept per seed
  checkpoint  orbax checkpoints of the train state and the metrics log, for resumable runs
  loop        `train_and_evaluate(config, workdir)`: the whole experiment, every seed side by side
"""
