"""Schedules built from others or from a metric: SequentialLR, ChainedScheduler,
ReduceLROnPlateau. Public through `ember.optim.lr_scheduler`; PyTorch's rules.
"""
from __future__ import annotations

import math
from bisect import bisect_right

from ember.optim.lr_scheduler import LRScheduler, check_optimizer, per_group
from ember.optim.optimizer import Optimizer, OptimizerError


def _check_children(owner: str, optimizer: Optimizer, schedulers) -> list:
    schedulers = list(schedulers)
    if not schedulers:
        raise OptimizerError(f"{owner} needs at least one scheduler")
    for index, scheduler in enumerate(schedulers):
        if isinstance(scheduler, ReduceLROnPlateau):
            raise OptimizerError(f"{owner} cannot hold ReduceLROnPlateau (index {index}): its "
                                 f"step() needs the metric")
        if not isinstance(scheduler, LRScheduler):
            raise OptimizerError(f"{owner}: entry {index} is a {type(scheduler).__name__}, "
                                 f"not a learning-rate scheduler")
        if scheduler.optimizer is not optimizer:
            raise OptimizerError(f"{owner}: scheduler {index} "
                                 f"({type(scheduler).__name__}) drives another optimizer")
    return schedulers


class _Composite(LRScheduler):
    """State dicts of schedulers that hold others: the children's are nested."""

    def state_dict(self):
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "_schedulers")}
        state["_schedulers"] = [scheduler.state_dict() for scheduler in self._schedulers]
        return state

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        children = state_dict.pop("_schedulers")
        self.__dict__.update(state_dict)
        for scheduler, child in zip(self._schedulers, children):
            scheduler.load_state_dict(child)


class SequentialLR(_Composite):
    """Run `schedulers[i]` from `milestones[i-1]` on; each starts from initial_lr at its
    milestone (e.g. a LinearLR warm-up, then CosineAnnealingLR).

    >>> import ember
    >>> from ember.optim import lr_scheduler
    >>> opt = ember.optim.SGD([ember.nn.Parameter(ember.zeros(1))], lr=1.0)
    >>> warmup = lr_scheduler.LinearLR(opt, start_factor=0.5, total_iters=2)
    >>> decay = lr_scheduler.ExponentialLR(opt, gamma=0.5)
    >>> sched = lr_scheduler.SequentialLR(opt, [warmup, decay], milestones=[2])
    >>> lrs = [sched.get_last_lr()[0]]
    >>> for _ in range(4):
    ...     sched.step(); lrs.append(sched.get_last_lr()[0])
    >>> lrs
    [0.5, 0.75, 1.0, 0.5, 0.25]
    """

    def __init__(self, optimizer: Optimizer, schedulers, milestones, last_epoch: int = -1):
        check_optimizer("SequentialLR", optimizer)
        self._schedulers = _check_children("SequentialLR", optimizer, schedulers)
        self._milestones = list(milestones)
        if len(self._milestones) != len(self._schedulers) - 1:
            raise OptimizerError(f"SequentialLR needs one milestone fewer than schedulers, got "
                                 f"{len(self._schedulers)} schedulers and "
                                 f"{len(self._milestones)} milestones")
        self.optimizer = optimizer
        self.last_epoch = last_epoch + 1
        # the children each ran their step 0 when built: undo that, then start the first one
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        self._undo_initial_steps(self)
        first = self._schedulers[bisect_right(self._milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    def _undo_initial_steps(self, scheduler):
        if hasattr(scheduler, "_schedulers"):
            for child in scheduler._schedulers:
                self._undo_initial_steps(child)
        elif hasattr(scheduler, "last_epoch"):
            scheduler.last_epoch -= 1

    def step(self):
        """Advance one epoch with the scheduler in charge of it."""
        self.last_epoch += 1
        index = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[index]
        if index > 0 and self._milestones[index - 1] == self.last_epoch:
            scheduler._update_lr(0)  # restart it from its closed form at epoch 0
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()


class ChainedScheduler(_Composite):
    """Step several chainable schedulers together every epoch (their factors multiply).

    >>> import ember
    >>> from ember.optim import lr_scheduler
    >>> opt = ember.optim.SGD([ember.nn.Parameter(ember.zeros(1))], lr=1.0)
    >>> sched = lr_scheduler.ChainedScheduler([lr_scheduler.ExponentialLR(opt, gamma=0.5),
    ...                                        lr_scheduler.StepLR(opt, step_size=2, gamma=0.1)])
    >>> sched.step(); sched.step(); sched.get_last_lr()
    [0.025]
    """

    def __init__(self, schedulers, optimizer: Optimizer | None = None):
        schedulers = list(schedulers)
        if optimizer is None and schedulers:
            optimizer = schedulers[0].optimizer
        self._schedulers = _check_children("ChainedScheduler", optimizer, schedulers)
        self.optimizer = optimizer
        self._last_lr = self._current_lrs()

    def step(self):
        """Step every scheduler in order."""
        for scheduler in self._schedulers:
            scheduler.step()
        self._last_lr = self._current_lrs()


class ReduceLROnPlateau(LRScheduler):
    """Multiply lr by `factor` once the metric passed to `step(metric)` has not improved for
    more than `patience` epochs ('min' mode: lower is better; improvement means beyond
    `threshold`, relative or absolute), then wait `cooldown` epochs; never below `min_lr`.

    >>> import ember
    >>> opt = ember.optim.SGD([ember.nn.Parameter(ember.zeros(1))], lr=1.0)
    >>> sched = ember.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=1, factor=0.5)
    >>> for loss in [3.0, 2.0, 2.0, 2.0]:
    ...     sched.step(loss)
    >>> sched.get_last_lr()
    [0.5]
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr=0, eps: float = 1e-8):
        if factor >= 1.0:
            raise OptimizerError(f"ReduceLROnPlateau: factor must be < 1.0, got {factor!r}")
        if mode not in ("min", "max"):
            raise OptimizerError(f"ReduceLROnPlateau: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise OptimizerError(f"ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', "
                                 f"got {threshold_mode!r}")
        self.optimizer = check_optimizer("ReduceLROnPlateau", optimizer)
        self.factor = factor
        self.default_min_lr = None if isinstance(min_lr, (list, tuple)) else min_lr
        self.min_lrs = per_group("min_lr", optimizer, min_lr)
        self.patience = patience
        self.cooldown = cooldown
        self.eps = eps
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.last_epoch = 0
        self._last_lr = self._current_lrs()
        self._reset()

    def _reset(self):
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def _is_better(self, value: float, best: float) -> bool:
        """Whether `value` improves on `best` by more than the threshold."""
        if self.threshold_mode == "rel":
            scale = 1.0 - self.threshold if self.mode == "min" else 1.0 + self.threshold
            return value < best * scale if self.mode == "min" else value > best * scale
        if self.mode == "min":
            return value < best - self.threshold
        return value > best + self.threshold

    def step(self, metrics, epoch=None):
        """Record this epoch's metric (a number or one-element Tensor); reduce lr on a
        plateau."""
        current = float(metrics)
        self.last_epoch = self.last_epoch + 1 if epoch is None else epoch
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs during the cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = self._current_lrs()

    def _reduce_lr(self):
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise OptimizerError(f"ReduceLROnPlateau: the optimizer now has {len(groups)} "
                                     f"parameter groups but min_lr lists {len(self.min_lrs)}; "
                                     f"update scheduler.min_lrs")
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, min_lr)
            if old_lr - new_lr > self.eps:
                group["lr"] = new_lr
