"""Training: the new softmax layer, fine-tuning of the top blocks, the trainers registry, and
TensorBoard summaries."""
