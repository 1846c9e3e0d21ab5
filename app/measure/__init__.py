"""GPU measurement harness (needs torch, transformers, nvidia-ml-py: the `measure` extra).

The web app never imports this package; it imports the estimator to check parameter counts.
"""
