"""The training loop as a generator of small snapshots; it knows nothing of any GUI.

The whole dataset lives on the device as one tensor, as the Dataset stores it (uint8 for 8-bit
sources, a quarter of float32), and batches are gathered by index and converted to float there,
which avoids per-sample Python work. The loop is cancellable between steps, starts from whatever
weights the model has (warm start) and never leaves non-finite weights behind: a diverged run
is rolled back to the last weights that were checked finite.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from latentlab.core.data.pixels import unit_tensor
from latentlab.core.data.specs import Dataset
from latentlab.core.inference.objectives import beta_at, elbo_terms, kl_penalty
from latentlab.core.models.config import TrainConfig

from . import mlp_step
from .adam import adam
from .device import resolve_device

# Images per piece of an epoch's test pass. Small enough that each piece's temporaries (a few MB
# for a 784-400 MLP) are reused by the allocator from piece to piece: larger ones come fresh from
# the kernel every time, and first-touch page faults then cost more than the arithmetic.
TEST_CHUNK = 512
OOM_ERRORS = tuple({getattr(torch, "OutOfMemoryError", MemoryError), torch.cuda.OutOfMemoryError, MemoryError})


@dataclass(frozen=True)
class Snapshot:
    """What the trainer reports: plain floats and CPU numpy arrays only, safe to hand to another thread."""

    step: int                      # optimiser steps taken in this run
    steps_total: int               # steps this run will take if not stopped
    epoch: int                     # epochs completed in this run
    epochs: int                    # epochs planned for this run
    beta: float                    # β in effect (after warm-up)
    recon: float                   # reconstruction NLL, nats per example, mean since the last snapshot
    kl: float                      # KL(q(z|x) || p(z)), nats per example, same window
    kl_per_dim: np.ndarray         # (K,) the same KL split by latent dimension
    seconds: float                 # wall time since the run started
    samples_per_s: float
    device: str
    latent: np.ndarray | None = None        # (n, K) posterior means of a fixed training subset
    record: dict | None = None              # the history row appended at an epoch end
    weights: dict | None = None             # CPU state dict (numpy) at epoch ends and at the end
    history: tuple = ()                     # the whole history, on the final snapshot
    done: bool = False
    cancelled: bool = False
    diverged: bool = False                  # the loss or the weights blew up; the weights were rolled back
    error: str | None = None                # one sentence when the run had to stop

    @property
    def elbo(self) -> float:
        return -(self.recon + self.kl)

    @property
    def fraction(self) -> float:
        return self.step / max(1, self.steps_total)


def scatter_order(n_train: int) -> np.ndarray:
    """One seeded order of the training rows: the live scatter shows a prefix of it."""
    return np.random.default_rng(0).permutation(n_train)


def scatter_subset(n_train: int, n_points: int, order: np.ndarray | None = None) -> np.ndarray:
    """The training indices whose means the live scatter shows: the first n_points of scatter_order,
    sorted, so every run shows the same points and a bigger subset holds all of a smaller one."""
    if n_points >= n_train:
        return np.arange(n_train)
    return np.sort((scatter_order(n_train) if order is None else order)[:n_points])


def state_to_numpy(model: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().to("cpu", copy=True).numpy() for k, v in model.state_dict().items()}


def train(model: torch.nn.Module, data: Dataset, cfg: TrainConfig, *, history: list | tuple = (),
          should_stop: Callable[[], bool] | None = None, live_budget=None) -> Iterator[Snapshot]:
    """Train `model` in place on `data`, yielding snapshots; the last one has done=True.

    Each snapshot's `latent` holds the means of scatter_subset(n, len(latent)): cfg.scatter_points of
    them, or with a live_budget (core.training.live_budget.LiveBudget) as many as it allows, measured as it goes."""
    device = resolve_device(cfg.device)
    old_threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(max(1, int(cfg.threads)))
    try:
        yield from _train(model, data, cfg, list(history), should_stop or (lambda: False), device, live_budget)
    finally:
        if cfg.threads:
            torch.set_num_threads(old_threads)


def _train(model, data, cfg, history, should_stop, device, live_budget=None) -> Iterator[Snapshot]:
    model.to(device)
    model.train()
    gen = torch.Generator(device=device)
    gen.manual_seed(cfg.seed)
    x = torch.from_numpy(data.x_train.stored).to(device)
    n = x.shape[0]
    x_test = torch.from_numpy(data.x_test.stored).to(device) if len(data.x_test) else None
    subset = _LiveSubset(n, cfg.scatter_points, live_budget, device) if cfg.scatter_points or live_budget else None
    params = [p for p in model.parameters()]
    opt = _adam(params, cfg.lr)
    grad_step = _gradient_step(model, params, cfg.free_bits)
    bs = min(cfg.batch_size, n)
    steps_per_epoch = math.ceil(n / bs)
    steps_total = steps_per_epoch * cfg.epochs
    dev_name = device.type
    k = model.latent_dim

    start = last_snap = time.perf_counter()
    step = 0
    seen = 0
    good_state = _clone_state(model)
    good_step = 0
    win = _Window(k, device)
    epoch_acc = _Window(k, device)

    def snapshot(epoch, **extra) -> Snapshot:
        seconds = time.perf_counter() - start
        rec, kl, kl_dim = win.means()
        return Snapshot(step=step, steps_total=steps_total, epoch=epoch, epochs=cfg.epochs,
                        beta=beta_at(step, cfg.beta, cfg.warmup_steps), recon=rec, kl=kl,
                        kl_per_dim=kl_dim, seconds=seconds, samples_per_s=seen / max(seconds, 1e-9),
                        device=dev_name, **extra)

    def finish(epoch, **extra) -> Snapshot:
        return snapshot(epoch, weights=state_to_numpy(model), history=tuple(history), done=True, **extra)

    # Per-step work is kept to the tensor ops themselves: full batches are gathered and their noise
    # drawn into reused buffers, the running sums are one reduction per term added to both windows,
    # and Adam uses torch's fused kernel where the build has one.
    xbuf = torch.empty((bs, *x.shape[1:]), dtype=x.dtype, device=device)
    fbuf = torch.empty((bs, *x.shape[1:]), device=device) if x.dtype == torch.uint8 else None
    ebuf = torch.empty((bs, k), device=device)
    sums = torch.empty(2 + k, device=device, dtype=next((p.dtype for p in params if p.is_floating_point()), None))
    fixed_beta = cfg.warmup_steps <= 0
    ceiling = None  # set from the untrained model's first loss: growing far past it is divergence too
    beta = beta_at(0, cfg.beta, cfg.warmup_steps)
    try:
        for epoch in range(cfg.epochs):
            perm = torch.randperm(n, device=device, generator=gen)
            for i in range(0, n, bs):
                if should_stop():
                    yield finish(epoch, cancelled=True, latent=_encode_subset(model, x, subset))
                    return
                idx = perm[i:i + bs]
                if idx.shape[0] == bs:
                    xb = torch.index_select(x, 0, idx, out=xbuf)
                    if fbuf is not None:
                        xb = unit_tensor(xb, out=fbuf)
                    eps = torch.randn((bs, k), generator=gen, device=device, out=ebuf)
                else:
                    xb = unit_tensor(x[idx])
                    eps = torch.randn((xb.shape[0], k), generator=gen, device=device)
                if not fixed_beta:
                    beta = beta_at(step, cfg.beta, cfg.warmup_steps)
                rec, kl, kl_dim = grad_step(xb, eps, beta)
                if ceiling is None:
                    ceiling = _loss_ceiling(float(rec.mean() + kl.mean()))
                opt.step()
                step += 1
                seen += xb.shape[0]
                torch.sum(rec, 0, keepdim=True, out=sums[:1])
                torch.sum(kl, 0, keepdim=True, out=sums[1:2])
                torch.sum(kl_dim, 0, out=sums[2:])
                win.add_sums(sums, xb.shape[0])
                epoch_acc.add_sums(sums, xb.shape[0])
                last_of_epoch = i + bs >= n
                due = step % cfg.snapshot_every == 0 or (
                    cfg.snapshot_seconds is not None and time.perf_counter() - last_snap >= cfg.snapshot_seconds)
                if due or last_of_epoch:
                    last_snap = time.perf_counter()
                    if not (win.below(ceiling) and _params_bounded(params)):
                        _load_state(model, good_state)
                        yield finish(epoch, latent=_encode_subset(model, x, subset), error=(
                            f"Training diverged at step {step} (the loss or the weights became NaN, infinite "
                            f"or exploded); "
                            f"the weights from step {good_step} were kept. Try a lower learning rate."), diverged=True)
                        return
                    good_state = _clone_state(model, into=good_state)
                    good_step = step
                    if not last_of_epoch:
                        yield snapshot(epoch, latent=_encode_subset(model, x, subset))
                        win = _Window(k, device)
            record = _epoch_record(model, len(history) + 1, cfg, step, epoch_acc, x_test, time.perf_counter() - start)
            history.append(record)
            epoch_acc = _Window(k, device)
            snap_extra = dict(latent=_encode_subset(model, x, subset), record=record)
            if epoch + 1 == cfg.epochs:
                yield finish(epoch + 1, **snap_extra)
                return
            yield snapshot(epoch + 1, weights=state_to_numpy(model), **snap_extra)
            win = _Window(k, device)
    except OOM_ERRORS:
        yield finish(0, error=out_of_memory(model, good_state, good_step, device, bs))
    finally:
        model.eval()


def out_of_memory(model, good_state, good_step: int, device, batch_size: int) -> str:
    """After running out of memory: the last good weights back in `model`, the device's cache
    released, and the sentence that says so (both loops stop this way)."""
    _load_state(model, good_state)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return (f"Out of memory on {device.type} while training with batch size {batch_size}; "
            f"the weights from step {good_step} were kept. Try a smaller batch or model.")


class _Window:
    """Running sums on the device, read back only at snapshots so steps never wait on a sync.

    One float64 vector: [0] the reconstruction term, [1] the KL, [2:] the KL per dimension (whose
    sum is the KL only when the prior factorises)."""

    def __init__(self, k: int, device):
        self.sums = torch.zeros(2 + k, device=device, dtype=torch.float64)
        self.count = 0

    def add(self, rec: torch.Tensor, kl: torch.Tensor, kl_dim: torch.Tensor) -> None:
        self.add_sums(torch.cat((rec.sum().view(1), kl.sum().view(1), kl_dim.sum(0))), rec.shape[0])

    def add_sums(self, sums: torch.Tensor, count: int) -> None:
        """Add per-batch sums laid out as `self.sums` (float32 ones are widened exactly)."""
        self.sums += sums
        self.count += count

    def finite(self) -> bool:
        return bool(torch.isfinite(self.sums).all())

    def below(self, ceiling: float) -> bool:
        """Finite, and the mean loss (reconstruction plus unweighted KL) per example under `ceiling`."""
        if not self.finite():
            return False
        return self.count == 0 or float(self.sums[:2].sum()) / self.count <= ceiling

    def means(self) -> tuple[float, float, np.ndarray]:
        c = max(self.count, 1)
        sums = self.sums.cpu().numpy()
        return float(sums[0]) / c, float(sums[1]) / c, sums[2:] / c


def _adam(params, lr):
    return adam(params, lr)


def _gradient_step(model, params, free_bits: float):
    """step(x, eps, beta) -> (reconstruction NLL (B,), KL (B,), KL per dimension (B, K)), detached,
    leaving the gradient of rec.mean() + beta · kl_penalty in every .grad, against the model's prior:
    latentlab's MLP VAE (always N(0, I)) has its gradient written out (core.training.mlp_step), any
    other model goes through autograd."""
    written = mlp_step.for_model(model, free_bits)
    if written is not None:
        def written_step(xb, eps, beta):
            rec, kl_dim = written(xb, eps, beta)
            return rec, kl_dim.sum(1), kl_dim
        return written_step
    prior = model.latent_prior()
    # A prior that does not factorise has a KL that is not the sum of the per-dimension values.
    kl_total = not (prior.closed_form and prior.factorised)

    def autograd_step(xb, eps, beta):
        terms = elbo_terms(model, xb, eps)
        penalty = kl_penalty(terms.kl_dim, free_bits, terms.kl if kl_total else None)
        loss = terms.rec.mean() + (penalty if beta == 1.0 else beta * penalty)  # 1·x is x: skip the op
        for p in params:
            p.grad = None
        loss.backward()
        return terms.rec.detach(), terms.kl.detach(), terms.kl_dim.detach()

    return autograd_step


def _clone_state(model, into: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """A copy of the model's state; `into` (an earlier copy) is overwritten in place, since memory
    fresh from the kernel every few steps costs page faults worth more than the copy."""
    if into is None:
        return {k: v.detach().clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for k, v in model.state_dict().items():
            into[k].copy_(v)
    return into


def _load_state(model, state) -> None:
    with torch.no_grad():
        for k, v in model.state_dict().items():
            v.copy_(state[k])


# An exploding run can stay finite for a long time (lr 1e3 with Bernoulli logits gives losses of 1e17
# nats and then "converges" to garbage), so finiteness alone is not enough. Healthy training lowers the
# loss from its untrained value; a thousandfold rise is never learning. Weights of a working VAE stay
# within a few hundred; a million is far past anything an optimiser reaches on purpose.
LOSS_GROWTH_LIMIT = 1000.0
WEIGHT_LIMIT = 1e6


def _loss_ceiling(first_loss: float) -> float:
    if not math.isfinite(first_loss):
        return -math.inf  # already broken at step 1: every check fails
    return LOSS_GROWTH_LIMIT * max(abs(first_loss), 1.0)


def _params_bounded(params) -> bool:
    with torch.no_grad():
        # max and min rather than abs().max(): no temporary the size of the weights (NaN fails both)
        return bool(torch.stack([(p.max() <= WEIGHT_LIMIT) & (p.min() >= -WEIGHT_LIMIT) for p in params if p.numel()]).all())


class _LiveSubset:
    """The rows the live scatter encodes: a fixed count, or what a LiveBudget allows (which it times)."""

    def __init__(self, n: int, count: int, budget, device):
        self.n, self.count, self.budget, self.device = n, count, budget, device
        self._order = None
        self._m = -1
        self._rows = None

    def rows(self) -> torch.Tensor:
        m = min(self.n, self.budget.points() if self.budget is not None else self.count)
        # Keep the rows while the budget moves by less than a tenth: a new prefix costs a sort.
        if self._rows is None or abs(m - self._m) > 0.1 * self._m:
            if m < self.n and self._order is None:
                self._order = scatter_order(self.n)
            self._rows = torch.from_numpy(scatter_subset(self.n, m, self._order)).to(self.device)
            self._m = m
        return self._rows


@torch.no_grad()
def _encode_subset(model, x, subset: _LiveSubset | None) -> np.ndarray | None:
    if subset is None:
        return None
    rows = subset.rows()
    if subset.budget is not None:
        subset.budget.encoding_started()
    was_training = model.training
    model.eval()
    mu = torch.cat([model.encode(unit_tensor(x[rows[i:i + 4096]]))[0] for i in range(0, len(rows), 4096)]).cpu().numpy()
    model.train(was_training)
    if subset.budget is not None:
        subset.budget.encoding_done(len(rows))
    return mu


@torch.no_grad()
def _epoch_record(model, number, cfg, step, acc: _Window, x_test, seconds) -> dict:
    rec, kl, kl_dim = acc.means()
    record = {"epoch": number, "beta": beta_at(step, cfg.beta, cfg.warmup_steps), "recon": rec, "kl": kl,
              "elbo": -(rec + kl), "kl_per_dim": [float(v) for v in kl_dim], "seconds": seconds}
    if x_test is not None:
        model.eval()
        gen = torch.Generator(device=x_test.device)
        gen.manual_seed(1234)
        test = _Window(model.latent_dim, x_test.device)
        for i in range(0, x_test.shape[0], TEST_CHUNK):
            xb = unit_tensor(x_test[i:i + TEST_CHUNK])
            eps = torch.randn((xb.shape[0], model.latent_dim), generator=gen, device=xb.device)
            terms = elbo_terms(model, xb, eps)
            test.add(terms.rec, terms.kl, terms.kl_dim)
        model.train()
        t_rec, t_kl, _ = test.means()
        record.update(test_recon=t_rec, test_kl=t_kl, test_elbo=-(t_rec + t_kl))
    return record
