"""minigrad's examples: each trains a model from the project's notes on embedded, offline data."""
