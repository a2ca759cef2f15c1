"""Using an exported classifier. Public faces: `label.load_classifier` (a frozen graph, a codelab
graph, a `.tflite` or an `.onnx` model; each a `classifier.Classifier`), `evaluate`
(`Evaluation`, `evaluate_split`), `batch.label_all` and `plot.plot_evaluation`."""
