"""Fine-tuning and from-scratch training of mineral classifiers with ``transformers.Trainer`` + Accelerate.

``run_training(model_args, data_args, training_args)`` runs the steps; ``main(argv)`` is ``scripts/train.py``.
"""

from .run import find_checkpoint, main, run_training

__all__ = ["find_checkpoint", "main", "run_training"]
