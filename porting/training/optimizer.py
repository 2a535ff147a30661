"""slim's optimizer and learning-rate schedule as MXNet objects.

:class:`SlimRMSProp` is TF1's ``RMSPropOptimizer`` (slim's default) as an MXNet
optimizer; :class:`SlimExponentialDecay` is slim's learning-rate schedule as an
``mx.lr_scheduler`` that is a pure function of the update count, so a resumed run
continues on the same curve; :func:`optimizer_spec` turns a config into what
``Module.init_optimizer`` takes.

Optimizer mapping (slim's ``train_image_classifier.py`` defaults, PITFALLS 19):

==========================  =====================================  ==============================
slim / TF1                  here                                   why
==========================  =====================================  ==============================
RMSProp decay=0.9           ``SlimRMSProp(decay=0.9)``             same moving mean of g**2
momentum=0.9                ``momentum=0.9`` (heavy ball on the    MXNet's ``RMSProp`` has no
                            scaled step, as TF1)                   momentum unless ``centered``,
                                                                   which is Graves' different
                                                                   algorithm
epsilon=1.0, inside sqrt    ``epsilon=1.0`` inside the sqrt        MXNet's ``rmsprop_update``
                                                                   adds it outside
``ms`` slot starts at ones  starts at ones                         MXNet's starts at zeros
l2 4e-5 on weights          ``wd=4e-5``, ``__wd_mult__=0`` on      ``l2_regularizer(s)`` is
                            beta/gamma/bias                        ``s * sum(w**2) / 2``, gradient
                                                                   ``s * w`` = MXNet's ``wd``
lr 0.01 x 0.94 / 2 epochs   ``SlimExponentialDecay`` staircase     a pure function of the count
label_smoothing ls          get_symbol's ``smooth_alpha``          ``ls * (K-1) / K`` (PITFALLS 11a)
aux loss weight 0.4         aux head ``grad_scale=0.4``            mx_impl's training head
loss averaged over batch    ``rescale_grad = 1/(batch*workers)``   set by Module (PITFALLS 11b)
==========================  =====================================  ==============================
"""
from __future__ import annotations

import math

from porting import compat
from porting.training.config import TrainConfig

mx = compat.import_mx()


class SlimExponentialDecay(mx.lr_scheduler.LRScheduler):
    """slim's ``exponential_decay``: ``lr * rate ** (step // decay_steps)`` (staircase).

    A pure function of the update count (no state), so ``begin_num_update`` on resume
    reproduces the curve. MXNet passes the 1-based number of the update being made;
    TF's ``global_step`` counts the updates already made, hence ``num_update - 1``.
    """

    def __init__(self, base_lr: float, decay_steps: int, decay_rate: float, staircase: bool = True):
        super().__init__(base_lr=base_lr)
        if decay_steps < 1:
            raise ValueError(f"decay_steps must be >= 1, got {decay_steps}")
        self.decay_steps = int(decay_steps)
        self.decay_rate = float(decay_rate)
        self.staircase = bool(staircase)

    def __call__(self, num_update: int) -> float:
        p = max(int(num_update) - 1, 0) / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.base_lr * self.decay_rate ** p


@mx.optimizer.register
class SlimRMSProp(mx.optimizer.Optimizer):
    """TF1 ``RMSPropOptimizer`` (non-centered, with momentum), slim's training default.

    Per weight, with ``g = rescale_grad * grad + wd * weight``::

        ms  = decay * ms + (1 - decay) * g**2          # ms starts at ones (TF1)
        mom = momentum * mom + lr * g / sqrt(ms + epsilon)
        weight -= mom

    (tensorflow/python/training/rmsprop.py and its ApplyRMSProp kernel). Registered as
    ``"slimrmsprop"``. States: ``(ms, mom)``, pickled by ``Module.save_optimizer_states``.
    """

    def __init__(self, learning_rate=None, decay: float = 0.9, momentum: float = 0.9, epsilon: float = 1.0,
                 **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.decay = float(decay)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)

    def create_state(self, index, weight):
        return (mx.nd.ones(weight.shape, weight.context, dtype=weight.dtype),
                mx.nd.zeros(weight.shape, weight.context, dtype=weight.dtype))

    def update(self, index, weight, grad, state):
        self._update_count(index)
        lr = self._get_lr(index)
        wd = self._get_wd(index)
        ms, mom = state
        g = grad * self.rescale_grad
        if self.clip_gradient is not None:
            g = mx.nd.clip(g, -self.clip_gradient, self.clip_gradient)
        if wd:
            g = g + wd * weight
        ms[:] = self.decay * ms + (1.0 - self.decay) * mx.nd.square(g)
        mom[:] = self.momentum * mom + lr * g / mx.nd.sqrt(ms + self.epsilon)
        weight[:] = weight - mom


def optimizer_spec(cfg: TrainConfig, batches_per_epoch: int, begin_num_update: int = 0) -> tuple[str, dict]:
    """``(name, params)`` for ``Module.init_optimizer``; Module adds ``rescale_grad`` and ``sym``."""
    decay_steps = max(1, int(round(batches_per_epoch * cfg.lr_decay_epochs)))
    params = {
        "lr_scheduler": SlimExponentialDecay(cfg.lr, decay_steps, cfg.lr_decay),
        "wd": cfg.wd,
        "begin_num_update": int(begin_num_update),
    }
    if cfg.optimizer == "rmsprop":
        params.update(decay=cfg.rmsprop_decay, momentum=cfg.momentum, epsilon=cfg.rmsprop_epsilon)
        return "slimrmsprop", params
    params.update(momentum=cfg.momentum)
    return "sgd", params
