"""Adam as one fused kernel call per step, without torch.optim's machinery around it.

`torch.optim.Adam(fused=True)` runs this same kernel (`torch._fused_adam_`) with the same state
(float32 step counters on the parameters' device, moments shaped like the parameters), so the
weights come out bit for bit the same. What is left out is the class around it: its first use
imports torch's compiler stack (about 1.5 s of a short run, holding the interpreter lock while the
window waits), and each step pays for hooks, grouping and checks that a plain list of dense float
parameters on one device does not need. Anything else (another device type, complex or sparse
parameters, a torch without the kernel) gets torch.optim.Adam as before.
"""

from __future__ import annotations

import torch

BETAS = (0.9, 0.999)
EPS = 1e-8


class FusedAdam:
    """Adam (no weight decay, no AMSGrad) over `params`: state is made for a parameter the first time
    it has a gradient, and a step updates the parameters that have one, as torch.optim.Adam does."""

    def __init__(self, params, lr: float):
        self.params = list(params)
        self.lr = float(lr)
        self._state: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    @staticmethod
    def supports(params) -> bool:
        """Whether the fused kernel takes these parameters (checked on empty tensors: nothing changes)."""
        params = list(params)
        if not params or not hasattr(torch, "_fused_adam_"):
            return False
        device, dtype = params[0].device, params[0].dtype
        if any(p.device != device or p.dtype != dtype or not p.is_floating_point() for p in params):
            return False
        try:
            empty = [torch.zeros(0, device=device, dtype=dtype) for _ in range(4)]
            torch._fused_adam_([empty[0]], [empty[1]], [empty[2]], [empty[3]], [],
                               [torch.zeros((), device=device, dtype=torch.float32)], amsgrad=False, lr=1e-3,
                               beta1=BETAS[0], beta2=BETAS[1], weight_decay=0.0, eps=EPS, maximize=False)
        except (RuntimeError, NotImplementedError, TypeError):
            return False
        return True

    def step(self) -> None:
        params, grads, avgs, sqs, steps = [], [], [], [], []
        for p in self.params:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError("Adam does not support sparse gradients")
            state = self._state.get(id(p))
            if state is None:
                state = self._state[id(p)] = (torch.zeros_like(p, memory_format=torch.preserve_format),
                                              torch.zeros_like(p, memory_format=torch.preserve_format),
                                              torch.zeros((), dtype=torch.float32, device=p.device))
            params.append(p)
            grads.append(p.grad)
            avgs.append(state[0])
            sqs.append(state[1])
            steps.append(state[2])
        if not params:
            return
        with torch.no_grad():
            torch._foreach_add_(steps, 1)
            torch._fused_adam_(params, grads, avgs, sqs, [], steps, amsgrad=False, lr=self.lr, beta1=BETAS[0],
                               beta2=BETAS[1], weight_decay=0.0, eps=EPS, maximize=False)


def adam(params, lr: float):
    """The optimiser training uses: FusedAdam where the kernel takes the parameters, else torch.optim.Adam."""
    params = list(params)
    if FusedAdam.supports(params):
        return FusedAdam(params, lr)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr, foreach=True)
