"""Training. Public faces: `trainers.trainer_for` (the registry: `new_layer.train_new_layer`,
`fine_tuning.top_blocks.fine_tune`, `fine_tuning.whole_network.fine_tune_all`), `head` (the new
layer: `OutputLayer`, `HeadParams` and its training), `checkpoints`, `summaries` (TensorBoard).
"New layer", "head" and "output layer" name one thing: the layer `retrain` adds and trains."""
