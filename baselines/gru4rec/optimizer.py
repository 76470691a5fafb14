"""The official GRU4Rec code's Adagrad with momentum (see the package docstring)."""

from __future__ import annotations

import torch
from torch import nn

# ------------------------------------------------------------------------------ optimiser


class AdagradMomentum:
    """Adagrad with momentum, updating item tables only in the rows a step touched.

    The reference's ``IndexedAdagradM``: G += g^2; v = mu v - lr g / sqrt(G + eps); w += v.
    Rows not touched by a step keep their accumulator, velocity and weights unchanged.
    """

    def __init__(self, params: list[nn.Parameter], learning_rate: float, momentum: float, eps: float = 1e-6):
        self.learning_rate, self.momentum, self.eps = learning_rate, momentum, eps
        self.acc = {p: torch.zeros_like(p) for p in params}
        self.velocity = {p: torch.zeros_like(p) for p in params} if momentum > 0 else {}

    def state_dict(self) -> dict[str, list[torch.Tensor]]:
        """The accumulators and velocities, in the order of the parameters."""
        return {"acc": list(self.acc.values()), "velocity": list(self.velocity.values())}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, list[torch.Tensor]]) -> None:
        for name in ("acc", "velocity"):
            mine = list(getattr(self, name).values())
            if len(state[name]) != len(mine):
                raise ValueError(f"AdagradMomentum: {len(state[name])} {name} tensors for {len(mine)} parameters")
            for tensor, saved in zip(mine, state[name]):
                tensor.copy_(saved)

    @torch.no_grad()
    def step_dense(self, params: list[nn.Parameter], grads: list[torch.Tensor]) -> None:
        """Update whole ``params`` with their gradients ``grads``, all of them in one pass of
        each operation (``torch._foreach_*``, as torch.optim's foreach optimisers do)."""
        accs = [self.acc[p] for p in params]
        torch._foreach_addcmul_(accs, grads, grads)
        denoms = torch._foreach_add(accs, self.eps)
        torch._foreach_sqrt_(denoms)
        if self.momentum > 0:
            velocities = [self.velocity[p] for p in params]
            torch._foreach_mul_(velocities, self.momentum)
            torch._foreach_addcdiv_(velocities, grads, denoms, value=-self.learning_rate)
            torch._foreach_add_(params, velocities)
        else:
            torch._foreach_addcdiv_(params, grads, denoms, value=-self.learning_rate)

    @torch.no_grad()
    def step_rows(self, param: nn.Parameter, rows: torch.Tensor, grad: torch.Tensor) -> None:
        """Update ``param[rows]`` (``rows`` unique) with the coalesced gradient ``grad``."""
        acc = self.acc[param].index_select(0, rows).addcmul_(grad, grad)
        self.acc[param].index_copy_(0, rows, acc)
        update = grad / acc.add_(self.eps).sqrt_()
        if self.momentum > 0:
            v = self.velocity[param].index_select(0, rows).mul_(self.momentum).add_(update, alpha=-self.learning_rate)
            self.velocity[param].index_copy_(0, rows, v)
            param.index_add_(0, rows, v)
        else:
            param.index_add_(0, rows, update, alpha=-self.learning_rate)


