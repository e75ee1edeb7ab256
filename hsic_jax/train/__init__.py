"""Training. One module per concern:

  optimizer   labels (frozen / base / b_side), warm-up + cosine schedule, multi_transform AdamW,
              `freeze` (no frozen weight gradients) and `keep_frozen`
  step        the jitted train step (on-device batches, augmentation, loss, update) and `predict`
  checkpoint  orbax checkpoints of the train state and the metrics log, for resumable runs
  loop        `train_and_evaluate(config, workdir)`: the whole experiment, every seed side by side
"""
