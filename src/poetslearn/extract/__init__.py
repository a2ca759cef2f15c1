"""Bottlenecks and activations, computed once and cached: the feature extractor and its engines,
the caches, and the backends (`backends/`) that run the extractor here or on a Ray cluster."""
