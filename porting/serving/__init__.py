"""Serving the trained model: loading, preprocessing and prediction, inference-only graph rewrites.
"""
