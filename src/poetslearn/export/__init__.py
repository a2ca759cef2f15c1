"""Writing the trained classifier. Public faces: `stage.export_everything` and
`stage.plan_outputs` (the retrain stage), `graph`, `tflite`, `onnx`, `saved_model`. What each
file holds and how it is read back (the metadata among it) is in `artifacts/`."""
