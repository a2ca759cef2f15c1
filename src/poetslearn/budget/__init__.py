"""`retrain --time_budget`: measure this machine on this data, plan the most accurate run that
fits the time given, and run it against the clock (docs/fine-tuning.md, "In the time you have")."""
