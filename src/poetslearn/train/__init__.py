"""Training. Public faces: `trainers.trainer_for` (the registry: `new_layer.train_new_layer`,
`fine_tuning.fine_tune`, `fine_tuning_all.fine_tune_all`), `head` (the softmax layer and its
training), `checkpoints`, `summaries` (TensorBoard)."""
