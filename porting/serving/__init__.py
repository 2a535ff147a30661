"""Serving the trained model: ``prediction`` (load a model directory, preprocess exactly as in
training, predict and evaluate) and ``rewrites`` (inference-only graph rewrites such as
residual-scale folding).

Checkpoints are read through ``porting.training.checkpoint`` (format constants and readers)
and the label name comes from ``porting.training.symbol_heads``; serving never imports the
training loop, the verifier, autoport or the command line.
"""
