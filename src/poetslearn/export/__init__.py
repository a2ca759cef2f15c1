"""Writing the trained classifier. Public faces: `stage.export_everything` and
`stage.plan_outputs` (the retrain stage), `metadata` (one builder and one naming rule for every
artefact's metadata, and its reader), `graph`, `tflite`, `saved_model`."""
