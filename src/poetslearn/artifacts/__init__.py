"""The files `retrain` exports, as formats: what each holds and how it is read back. One reader
per format (`frozen_graph`, `tflite_file`, `onnx_file`), the metadata every one of them carries
(`metadata`, checked by `metadata_check` whoever wrote it), and the TFLite Model Metadata
packed inside a `.tflite` (`tflite_metadata`, `tflite_metadata_schema`, `tflite_bundle`).
`export/` writes the models with these; `inference/` opens them with these."""
