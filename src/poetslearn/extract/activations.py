"""The activations where the frozen part of the network ends, for fine-tuning: read from the
activation cache, the missing ones computed by the configured extraction backend (this process,
or a Ray cluster) and stored as they arrive."""

from __future__ import annotations

from dataclasses import replace

from poetslearn.extract.activation_cache import ActivationCache, ActivationReader
from poetslearn.backbone.split import ActivationCodec, SplitBackbone
from poetslearn.extract.backends import NodeCounts, extraction_backend_for
from poetslearn.extract.extractor import FeatureExtractor
from poetslearn.progress import printing_around, progress


def get_or_create_activations(splits: dict, split: SplitBackbone, extractor, config, log=print,
                              warn=print) -> dict[str, ActivationReader]:
    """A reader per split of the activations at the cut, computing the ones not cached yet."""
    engine = extractor.requested_engine if extractor.exact else "auto"
    # Described like the extractor, cut where the frozen part ends: a Ray worker builds the same.
    spec = replace(extractor.description, engine=engine, cut=split.cut, int8_calibration=None,
                   bottleneck_blocks=1)
    bottom = FeatureExtractor(extractor.arch, split.bottom, engine, warn, cut=split.cut,
                              description=spec)
    cache = ActivationCache(config.bottleneck_dir, extractor.arch.name, bottom.fingerprint,
                            split.activation_shape, ActivationCodec.for_architecture(
                                extractor.arch), warn)
    todo: dict[str, list[int]] = {}
    seen: set[bytes] = set()  # an image in two splits is computed once
    for name, s in splits.items():
        todo[name] = []
        for i, key in enumerate(s.images.keys()):
            if key not in cache and key not in seen:
                seen.add(key)
                todo[name].append(i)
    count, by_node = sum(len(v) for v in todo.values()), NodeCounts()
    if count:
        cache.check_room(count, log)
        batches = [(name, idx[j:j + config.bottleneck_batch_size]) for name, idx in todo.items()
                   for j in range(0, len(idx), config.bottleneck_batch_size)]
        results = extraction_backend_for(config).run(batches, splits, bottom)
        with progress(count, "Computing activations", "img", config.show_progress) as bar:
            by_node = _store_activations(results, splits, cache, bar, warn)
        bottom.release_engines()
    log(f"Activations at {split.cut} ({'x'.join(map(str, split.activation_shape))}): "
        f"computed {count:,}, {sum(len(s) for s in splits.values()) - count:,} were cached. "
        f"Cache: {cache.dir}")
    if by_node:
        log(by_node.describe("Activations"))
    return {name: cache.reader(s.images.keys()) for name, s in splits.items()}


def _store_activations(results, splits: dict, cache: ActivationCache, bar,
                       warn) -> NodeCounts:
    """Writes each batch's activations to the cache as it arrives (flushed even on Ctrl-C);
    returns how many each other machine computed."""
    by_node = NodeCounts()
    try:
        for result in results:
            for i, reason in result.failures.items():
                printing_around(bar, warn)(f"Skipping {reason}")
            keys = splits[result.split].images.keys()
            cache.add([keys[i] for i in result.ok], result.vectors)
            by_node.add(result)
            bar.update(len(result.indices))
    finally:
        cache.flush()
    return by_node
