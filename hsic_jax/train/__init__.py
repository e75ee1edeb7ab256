"""Training. One module per concern, in the order a run meets them:

  checks      the config, checked before any work, in the user's terms
  workdir     one experiment and one run per workdir (lock, config comparison, log.txt)
  state       the model family tuned by the method, the optimizer, the train state
              (`create_train_state`, for the loop, the benchmark and `count`)
  partition   the trainable and the frozen parameters (`split`, `combine`): the state
              holds the trainable ones per seed, the frozen ones once
  optimizer   labels (frozen / base / b_side), schedules, multi_transform Adam(W),
              layer-wise lr decay
  step        the jitted train steps and predicts of the task shapes: 'patch' (on-device
              batches, augmentation, mixup/cutmix, loss, update) and 'scene' (the whole scene,
              the loss masked to the training pixels)
  selection   the best validation state (`select='best_val'`): trainable leaves kept per seed
  checkpoint  orbax checkpoints of the train state and the metrics log, for resumable runs
  hosts       seeds over devices and hosts: shardings, global arrays, gathering
  classical   the other task shape: scikit-learn baselines fitted on single pixels' spectra
  timings     wall-clock per phase and the XLA compilations of a run (`results.json`)
  loop        `train_and_evaluate(config, workdir)`: the whole experiment as named stages
"""
