"""Fine-tuning: part of the network trained with the new layer. `top_blocks` trains the top K
blocks on cached activations (--fine_tune_blocks K) and holds the loop both trainers share;
`whole_network` trains every layer on the images (--fine_tune_blocks all); `model` is what they
train and its step; `recipe` the levers (rate schedule, label smoothing, mixup)."""
