"""Bottlenecks and activations, computed once and cached. Public faces:
`extractor.build_extractor` / `FeatureExtractor` / `ExtractorSpec`, `engines` (the registry),
`bottlenecks.get_or_create_bottlenecks`, `activations.get_or_create_activations`, the caches
(`bottleneck_cache`, `activation_cache`) over one `shard_store`, the one fill loop (`fill`), and
`backends` (where extraction runs: here or on a Ray cluster)."""
