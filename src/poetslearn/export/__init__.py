"""Writing the trained classifier: frozen graph, labels and metadata, SavedModel and TFLite."""
