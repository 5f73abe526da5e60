"""A training run: the loop (nin/train/loop.py) over jitted steps (nin/train/steps.py),
its optimizers, checkpoints, metrics, config checks and saved config.

    from nin import train
    train.train_and_evaluate(config, workdir)
"""
from nin.train.loop import train_and_evaluate

__all__ = ['train_and_evaluate']
