"""Annealing schedules: CosineAnnealingLR, CosineAnnealingWarmRestarts, OneCycleLR.

Public through `ember.optim.lr_scheduler`; the rules are PyTorch's, step for step.
"""
from __future__ import annotations

import math

from ember.optim.lr_scheduler import LRScheduler, check_optimizer, per_group
from ember.optim.optimizer import Optimizer, OptimizerError


def _cosine(start: float, end: float, fraction: float) -> float:
    """From `start` (fraction 0) to `end` (fraction 1) along half a cosine."""
    return end + (start - end) / 2.0 * (math.cos(math.pi * fraction) + 1)


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (initial_lr - eta_min) (1 + cos(pi epoch / T_max)) / 2 (SGDR without
    restarts; past T_max the cosine keeps going, back up towards initial_lr).

    >>> import ember
    >>> opt = ember.optim.SGD([ember.nn.Parameter(ember.zeros(1))], lr=1.0)
    >>> sched = ember.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=2)
    >>> lrs = []
    >>> for _ in range(2):
    ...     sched.step(); lrs.append(round(sched.get_last_lr()[0], 6))
    >>> lrs
    [0.5, 0.0]
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0,
                 last_epoch: int = -1):
        if T_max <= 0:
            raise OptimizerError(f"CosineAnnealingLR: T_max must be positive, got {T_max!r}")
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        epoch, period = self.last_epoch, self.T_max
        if self._is_initial:
            return self._current_lrs()
        if self._step_count == 1 and epoch > 0:  # resumed mid-schedule: closed form
            return self._closed_form_lr()
        if (epoch - 1 - period) % (2 * period) == 0:  # the bottom, where the ratio is 0/0
            rise = (1 - math.cos(math.pi / period)) / 2
            return [lr + (base_lr - self.eta_min) * rise
                    for base_lr, lr in zip(self.base_lrs, self._current_lrs())]
        ratio = ((1 + math.cos(math.pi * epoch / period))
                 / (1 + math.cos(math.pi * (epoch - 1) / period)))
        return [ratio * (lr - self.eta_min) + self.eta_min for lr in self._current_lrs()]

    def _closed_form_lr(self):
        return [_cosine(base_lr, self.eta_min, self.last_epoch / self.T_max)
                for base_lr in self.base_lrs]


class CosineAnnealingWarmRestarts(LRScheduler):
    """SGDR (Loshchilov & Hutter): cosine annealing from initial_lr to `eta_min` over T_i
    epochs, then restart, with T_0 first and each period `T_mult` times the last.
    `step(epoch)` accepts fractional epochs (e.g. `epoch + batch / batches`).

    >>> import ember
    >>> opt = ember.optim.SGD([ember.nn.Parameter(ember.zeros(1))], lr=1.0)
    >>> sched = ember.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=2)
    >>> lrs = []
    >>> for _ in range(3):
    ...     sched.step(); lrs.append(round(sched.get_last_lr()[0], 6))
    >>> lrs
    [0.5, 1.0, 0.5]
    """

    def __init__(self, optimizer: Optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0,
                 last_epoch: int = -1):
        if not isinstance(T_0, int) or T_0 <= 0:
            raise OptimizerError(f"CosineAnnealingWarmRestarts: T_0 must be a positive "
                                 f"integer, got {T_0!r}")
        if not isinstance(T_mult, int) or T_mult < 1:
            raise OptimizerError(f"CosineAnnealingWarmRestarts: T_mult must be an integer "
                                 f">= 1, got {T_mult!r}")
        self.T_0 = T_0
        self.T_i = T_0
        self.T_mult = T_mult
        self.eta_min = eta_min
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [_cosine(base_lr, self.eta_min, self.T_cur / self.T_i)
                for base_lr in self.base_lrs]

    def step(self, epoch: float | None = None):
        """Advance one epoch, or jump to `epoch` (may be fractional)."""
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:
                self.T_cur = self.T_cur % self.T_i
                self.T_i = self.T_i * self.T_mult
        else:
            self._jump_to(epoch)
        self.last_epoch = math.floor(epoch)
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = self._current_lrs()

    def _jump_to(self, epoch: float):
        if epoch < 0:
            raise OptimizerError(f"CosineAnnealingWarmRestarts: epoch must be >= 0, got "
                                 f"{epoch!r}")
        if epoch < self.T_0:
            self.T_i, self.T_cur = self.T_0, epoch
        elif self.T_mult == 1:
            self.T_cur = epoch % self.T_0
        else:  # find the period n holding `epoch`: T_0 (T_mult^n - 1) / (T_mult - 1) <= epoch
            n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
            self.T_cur = epoch - self.T_0 * (self.T_mult ** n - 1) / (self.T_mult - 1)
            self.T_i = self.T_0 * self.T_mult ** n


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin): lr rises from max_lr/div_factor to `max_lr` over
    `pct_start` of `total_steps`, then anneals to initial_lr/final_div_factor (three_phase:
    back to initial_lr first, then down). With `cycle_momentum`, momentum (or Adam's beta1)
    moves inversely between `max_momentum` and `base_momentum`. Step it once per batch.

    >>> import ember
    >>> opt = ember.optim.SGD([ember.nn.Parameter(ember.zeros(1))], lr=0.1, momentum=0.9)
    >>> sched = ember.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=10,
    ...                                               anneal_strategy='linear')
    >>> sched.get_last_lr(), opt.param_groups[0]['momentum']
    ([0.04], 0.95)
    >>> for _ in range(2):
    ...     sched.step()
    >>> sched.get_last_lr(), round(opt.param_groups[0]['momentum'], 6)
    ([1.0], 0.85)
    """

    def __init__(self, optimizer: Optimizer, max_lr, total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None,
                 pct_start: float = 0.3, anneal_strategy: str = "cos",
                 cycle_momentum: bool = True, base_momentum=0.85, max_momentum=0.95,
                 div_factor: float = 25.0, final_div_factor: float = 1e4,
                 three_phase: bool = False, last_epoch: int = -1):
        check_optimizer("OneCycleLR", optimizer)
        self.total_steps = _total_steps(total_steps, epochs, steps_per_epoch)
        if not isinstance(pct_start, float) or not 0 <= pct_start <= 1:
            raise OptimizerError(f"OneCycleLR: pct_start must be a float in [0, 1], got "
                                 f"{pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise OptimizerError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got "
                                 f"{anneal_strategy!r}")
        self.anneal_strategy = anneal_strategy
        rise_end = float(pct_start * self.total_steps) - 1
        last = self.total_steps - 1
        # each phase: (end step, start lr key, end lr key, start momentum key, end momentum key)
        if three_phase:
            self._phases = [(rise_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                            (2 * rise_end, "max_lr", "initial_lr", "base_momentum",
                             "max_momentum"),
                            (last, "initial_lr", "min_lr", "max_momentum", "max_momentum")]
        else:
            self._phases = [(rise_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                            (last, "max_lr", "min_lr", "base_momentum", "max_momentum")]
        if last_epoch == -1:
            for group, top in zip(optimizer.param_groups, per_group("max_lr", optimizer, max_lr)):
                group["initial_lr"] = top / div_factor
                group["max_lr"] = top
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise OptimizerError(f"OneCycleLR: cycle_momentum needs an optimizer with "
                                     f"momentum or betas; {type(optimizer).__name__} has "
                                     f"neither (pass cycle_momentum=False)")
            self.use_beta1 = "betas" in optimizer.defaults
            if last_epoch == -1:
                tops = per_group("max_momentum", optimizer, max_momentum)
                bottoms = per_group("base_momentum", optimizer, base_momentum)
                for group, top, bottom in zip(optimizer.param_groups, tops, bottoms):
                    self._set_momentum(group, top)
                    group["max_momentum"] = top
                    group["base_momentum"] = bottom
        super().__init__(optimizer, last_epoch)

    def _set_momentum(self, group: dict, value: float):
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def _anneal(self, start: float, end: float, fraction: float) -> float:
        if self.anneal_strategy == "cos":
            return _cosine(start, end, fraction)
        return (end - start) * fraction + start

    def get_lr(self):
        step = self.last_epoch
        if step > self.total_steps:
            raise OptimizerError(f"OneCycleLR: stepped {step} times but total_steps is "
                                 f"{self.total_steps}")
        lrs = []
        for group in self.optimizer.param_groups:
            phase_start = 0.0
            for index, (end, lr_from, lr_to, momentum_from, momentum_to) in enumerate(
                    self._phases):
                if step <= end or index == len(self._phases) - 1:
                    fraction = (step - phase_start) / (end - phase_start)
                    lrs.append(self._anneal(group[lr_from], group[lr_to], fraction))
                    if self.cycle_momentum:
                        self._set_momentum(group, self._anneal(group[momentum_from],
                                                               group[momentum_to], fraction))
                    break
                phase_start = end
        return lrs


def _total_steps(total_steps, epochs, steps_per_epoch) -> int:
    if total_steps is not None:
        if not isinstance(total_steps, int) or total_steps <= 0:
            raise OptimizerError(f"OneCycleLR: total_steps must be a positive integer, got "
                                 f"{total_steps!r}")
        return total_steps
    if epochs is None or steps_per_epoch is None:
        raise OptimizerError("OneCycleLR: give either total_steps or both epochs and "
                             "steps_per_epoch")
    for name, value in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch)):
        if not isinstance(value, int) or value <= 0:
            raise OptimizerError(f"OneCycleLR: {name} must be a positive integer, got "
                                 f"{value!r}")
    return epochs * steps_per_epoch
