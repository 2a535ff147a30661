"""The verifier: ``verify()`` and its result (``api``), its passes (lint, weights, parity) and the renderers.
"""
