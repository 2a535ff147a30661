"""Training the verified MXNet symbol: the trainer, symbol heads for training, the metrics log.
"""
