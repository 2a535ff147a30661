"""The :class:`Predictor`: softmax scores of a loaded model with MXNet's Module, in inference mode.

It binds ``porting.serving.model_loading.inference_symbol`` (by default with the residual
scales folded into the up-projection weights, ``porting.serving.rewrites``) for a fixed
batch size, and pads the last batch of a call up to it.
"""
from __future__ import annotations

import numpy as np

from porting import compat

mx = compat.import_mx()

from porting.serving import rewrites  # noqa: E402
from porting.serving.model_loading import LoadedModel, inference_symbol  # noqa: E402


class Predictor:
    """Softmax scores of a :class:`LoadedModel` with MXNet's Module, in inference mode."""

    def __init__(self, model: LoadedModel, context=None, batch_size: int = 16, fold_scales: bool = True):
        """Bind an inference-only executor (MXNet fuses conv + batch norm + ReLU there).

        ``fold_scales``: move the residual scales into the up-projection weights
        (``porting.serving.rewrites.fold_residual_scales``; the same scores up to float rounding, faster
        on CPU);
        ``folded`` lists the convolutions that absorbed one.
        """
        self.model = model
        self.batch_size = int(batch_size)
        symbol, arg_params, self.folded = inference_symbol(model.symbol), model.arg_params, []
        if fold_scales:
            symbol, arg_params, self.folded = rewrites.fold_residual_scales(symbol, arg_params)
        self.module = mx.mod.Module(symbol, data_names=("data",), label_names=None, context=context or mx.cpu())
        self.module.bind(data_shapes=[("data", (self.batch_size, *model.data_shape))], for_training=False)
        self.module.set_params(arg_params, model.aux_params, allow_missing=False, allow_extra=True)

    def scores(self, images: np.ndarray) -> np.ndarray:
        """``(N, classes)`` softmax scores of preprocessed ``(N, 3, H, W)`` images."""
        images = np.asarray(images, np.float32)
        out = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start:start + self.batch_size]
            n = len(chunk)
            if n < self.batch_size:
                chunk = np.concatenate([chunk, np.zeros((self.batch_size - n, *chunk.shape[1:]), np.float32)])
            self.module.forward(mx.io.DataBatch([mx.nd.array(chunk)]), is_train=False)
            out.append(self.module.get_outputs()[0].asnumpy()[:n])
        return np.concatenate(out) if out else np.zeros((0, len(self.model.classes)), np.float32)
