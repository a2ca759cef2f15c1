"""The export stage of `retrain`: which files it will write (planned and proven writable before
any long work), and writing them: frozen graph, labels and metadata first, then the SavedModel
and the `.tflite` model when asked for. Every artefact's metadata comes from one `ModelFacts`."""

from __future__ import annotations

from pathlib import Path

from poetslearn.artifacts.metadata import ModelFacts, metadata_path_for
from poetslearn.backbone.block_features import pooled_layers
from poetslearn.errors import PoetslearnError
from poetslearn.export.graph import export_classifier
from poetslearn.export.onnx import export_onnx
from poetslearn.export.saved_model import export_saved_model
from poetslearn.export.tflite import export_tflite, representative_images
from poetslearn.outputs import check_writable, describe_os_error


def plan_outputs(config) -> list[Path]:
    """Every file `retrain` will write for `config`, checked writable now, not after an hour, and
    checked distinct: no two outputs may be the same file."""
    outputs = [config.output_graph, config.output_labels, metadata_path_for(config.output_graph)]
    if config.tflite_output is not None:
        outputs += [config.tflite_output, metadata_path_for(config.tflite_output)]
    if config.onnx_output is not None:
        outputs.append(config.onnx_output)
    if config.saved_model_dir is not None:
        outputs.append(config.saved_model_dir / "saved_model.pb")
    seen: dict[Path, Path] = {}
    for path in outputs:
        key = Path(path).resolve()
        if key in seen:
            raise PoetslearnError(
                f"Two outputs would be written to {path}; give --output_graph, "
                f"--output_labels, --tflite_output and --onnx_output different names."
            )
        seen[key] = path
    check_writable(outputs)
    return outputs


def run_facts(dataset, splits: dict, weights, trained, score, extractor, config) -> dict:
    """What the metadata records of the run: data set and split, weights, accuracy, training."""
    return {
        "dataset": {
            "name": dataset.name,
            "source": dataset.source,
            "sizes": {name: len(split) for name, split in splits.items()},
            "validation_percentage": config.validation_percentage,
            "testing_percentage": config.testing_percentage,
            "multi_label": dataset.multi_label,
        },
        "weights": weights.as_dict(),
        validation_key(dataset): trained.best_validation_accuracy,
        "test_accuracy": score.accuracy,
        # When every vector was cached no engine ran: the requested one says how they were made.
        "bottleneck_engine": extractor.engine_name or extractor.requested_engine,
        "test_size": score.size,
        **score.extra,
        "best_step": trained.best_step,
        **({"fine_tuning": trained.details} if trained.details else {}),
        **({"time_budget": config.plan} if config.plan else {}),
        "training": {
            "how_many_training_steps": trained.steps or config.how_many_training_steps,
            **{
                k: getattr(config, k)
                for k in ("learning_rate", "train_batch_size", "weight_decay", "seed")
            },
        },
    }


def validation_key(dataset) -> str:
    """The best step's validation figure: accuracy, or mAP for multi-label data."""
    return "validation_map" if dataset.multi_label else "validation_accuracy"


def model_facts(
    extractor, layer, class_names: list[str], input_format: str, run: dict, mirror: bool = False
):
    arch, blocks = extractor.arch, extractor.bottleneck_blocks
    thresholds = None if layer.thresholds is None else [float(t) for t in layer.thresholds]
    return ModelFacts(
        architecture=arch.name,
        input_size=arch.input_size,
        preprocessing=arch.preprocessing,
        input_format=input_format,
        labels=list(class_names),
        feature_dim=extractor.feature_dim,
        bottleneck_blocks=blocks,
        pooled_layers=list(pooled_layers(arch, blocks)) if blocks > 1 else [],
        run=run,
        thresholds=thresholds,
        test_time_mirror=mirror,
    )


def export_everything(
    extractor, trained, dataset, splits: dict, weights, score, config
) -> dict[str, Path]:
    """Writes every artefact `config` asks for; returns {what: path}."""
    layer, names = trained.layer, dataset.class_names
    run = run_facts(dataset, splits, weights, trained, score, extractor, config)
    facts = model_facts(extractor, layer, names, config.input_format, run, config.test_time_mirror)
    paths = export_classifier(extractor, layer, facts, config.output_graph, config.output_labels)
    try:
        if config.saved_model_dir is not None:
            paths["saved_model"] = export_saved_model(
                extractor, layer, names, config.saved_model_dir, config.test_time_mirror
            )
        if config.tflite_output is not None:
            representative = (
                representative_images(splits["train"], extractor)
                if config.tflite_quantize
                else None
            )
            paths.update(
                export_tflite(
                    extractor,
                    layer,
                    facts,
                    config.tflite_output,
                    config.tflite_quantize,
                    representative,
                )
            )
        if config.onnx_output is not None:
            paths.update(export_onnx(extractor, layer, facts, config.onnx_output))
    except OSError as e:  # the new graph is in place already: say so, not "left intact"
        written = ", ".join(str(p) for p in paths.values())
        raise PoetslearnError(
            describe_os_error(e, f"the new {written} were written, the later exports were not.")
        ) from e
    return paths
