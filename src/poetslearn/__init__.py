"""poetslearn: transfer learning from the command line (the successor of TensorFlow for Poets)."""

__version__ = "0.2.0"
