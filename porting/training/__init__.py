"""Training the verified MXNet network (``python -m porting.train``, command in ``porting.cli.train``).

Modules, in the order a run uses them:

* ``config``       TrainConfig, its checks, the resume rules, TrainError;
* ``devices``      --gpus contexts, the kvstore, the parameter-server environment;
* ``symbol_heads`` the training heads of a translated symbol and the constants the heads share
                   (label name, aux-loss weight, parameters without weight decay);
* ``network``      the training symbol (hand port or --symbol), the metrics of its main head;
* ``memory``       the memory a run needs, estimated from the symbol before binding;
* ``optimizer``    slim's RMSProp and learning-rate schedule as MXNet objects;
* ``checkpoint``   the model directory: checkpoint files, params files, fine-tuning, data copy, lock;
* ``metrics_log``  per-epoch metrics as CSV, JSON and a curve;
* ``preparation``  prepare(): everything up to the first batch (checks, lock, module, parameters, states);
* ``loop``         run(): the epochs, evaluation and checkpointing; train() = prepare() then run().

Training never imports the verifier or autoport; serving reads checkpoints through
``checkpoint`` and never imports the loop.
"""
