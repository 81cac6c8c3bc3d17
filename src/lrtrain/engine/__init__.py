"""Training: the lesson's model as K replicas, how a step moves them (SGD's scaled gradients, the
adaptive optimizers), the gradient paths (autograd, Gram, mini-batch, DDP), the rows a step reads,
the loop's state, a captured CUDA-graph step, the memory check, and ``train`` — setup, loop,
result.

May import: ``theory`` (schedules, the ``auto`` settings' analysis), ``data``, ``config``,
``errors``. Never ``runs``: a checkpoint leaves the engine as bytes, and ``workflows`` stores it.
"""
