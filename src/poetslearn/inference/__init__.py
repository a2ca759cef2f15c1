"""Using an exported classifier. Public faces: `label.load_classifier` (a frozen graph, a codelab
graph or a `.tflite` model), `evaluate` (`Evaluation`, `evaluate_split`, the retrain stage's
`score_on_test`) and `plot.plot_evaluation`."""
