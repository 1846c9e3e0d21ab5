"""VRAM calculator for open models: estimator, catalog and web app."""
