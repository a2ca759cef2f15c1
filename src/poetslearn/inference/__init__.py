"""Using an exported classifier: `label` (load_classifier) and `evaluate`."""
