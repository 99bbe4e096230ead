"""Training, for every task: the trainer and its callbacks, the runner every recipe goes through,
its checks, the run folder and its files, stopping on a signal, and self-critical training."""
