"""Serving the trained model: ``model_loading`` (a model directory written by ``porting.train``,
or a converted ``PREFIX-symbol.json``/params pair with its preprocessing flags), ``preprocessing``
(an image file as the network input, exactly as in training), ``predictor`` (the Predictor:
scores in inference mode with MXNet's Module or onnxruntime, and the measured choice between
them), ``prediction`` (predict files, evaluate an ``.lst``), ``rewrites`` (exact inference-only
graph rewrites: batch norms and residual scales folded into convolutions) and ``onnx_export``.

Checkpoints are read through ``porting.training.checkpoint`` (format constants and readers)
and the label name comes from ``porting.training.symbol_heads``; serving never imports the
training loop, the verifier, autoport or the command line.
"""
