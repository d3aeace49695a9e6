"""`train`: the one way to train, whatever the data and however many processes.

Data held in memory in one process goes to the in-memory loop (core.training.loop), unchanged. Data
streamed from disk (core.data.streamed), or any run that is one rank of a torchrun job, goes to the
sharded loop below, which keeps the in-memory loop's arithmetic so that the runs agree:

- every rank draws the same epoch permutation and the same noise from the seeded generator, exactly
  as one process training on the global batch would, and reads and decodes only its share of each
  global batch (contiguous, sizes differing by at most one);
- rank r's loss is (W / B) · Σ over its rows of (reconstruction + β · KL), so that after DDP averages
  the gradients over W ranks the step is that of the global batch of B rows, mean reduction, even for a
  short last batch; with free bits the clamp's gate is decided on the global per-dimension KL (one
  all-reduce), which gives the clamped objective's gradient;
- the running sums, the divergence check and the stop flag are all-reduced at the same steps on
  every rank, so a NaN or a Ctrl+C anywhere stops every rank at the same step with the last good
  weights, and every rank reports the same numbers (rank 0 alone writes them).
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator

import numpy as np
import torch

from latentlab.core.data.pixels import unit_tensor
from latentlab.core.data.streaming.streamed import is_streamed
from latentlab.core.inference.objectives import beta_at, elbo_terms, kl_penalty
from latentlab.core.models.config import TrainConfig

from . import loop
from .device import resolve_device
from .distributed import STOP_EVERY, lost_peers, share
from .loop import Snapshot


def train(model, data, cfg: TrainConfig, *, history=(), should_stop: Callable[[], bool] | None = None,
          live_budget=None, group=None) -> Iterator[Snapshot]:
    """Train `model` in place on `data`, yielding snapshots (see core.training.loop.train); `group`
    (core.training.distributed.Group) makes this process one rank of a torchrun job."""
    if group is None and not is_streamed(data.x_train):
        yield from loop.train(model, data, cfg, history=history, should_stop=should_stop, live_budget=live_budget)
        return
    device = group.device if group is not None else resolve_device(cfg.device)
    old_threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(max(1, int(cfg.threads)))
    try:
        with lost_peers(rank=0 if group is None else group.rank):
            yield from _train(model, data, cfg, list(history), should_stop or (lambda: False), device, live_budget, group)
    finally:
        if cfg.threads:
            torch.set_num_threads(old_threads)


class _Objective(torch.nn.Module):
    """The ELBO's terms as a module's forward, which is what DDP hooks its gradient reduction to."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, eps):
        terms = elbo_terms(self.model, x, eps)
        return terms.rec, terms.kl, terms.kl_dim   # plain tensors: what DDP looks through for its hooks


class _Rows:
    """A split's images by row: a tensor on the device for data in memory, else decoded from disk
    one batch ahead of the step that needs it, on a thread (PIL releases the GIL while decoding)."""

    def __init__(self, pixels, device):
        self.pixels, self.device = pixels, device
        self.streamed = is_streamed(pixels)
        self.x = None if self.streamed else torch.from_numpy(pixels.stored).to(device)
        self.n = len(pixels)

    def order(self, gen) -> torch.Tensor | np.ndarray:
        custom = self.pixels.epoch_order(gen) if self.streamed else None
        if custom is not None:
            return custom
        perm = torch.randperm(self.n, device=self.device, generator=gen)
        return perm.cpu().numpy() if self.streamed else perm

    def take(self, rows) -> torch.Tensor:
        return unit_tensor(self[rows])

    def __getitem__(self, rows) -> torch.Tensor:
        """The rows' images as stored (uint8 or float32) on the device."""
        if not self.streamed:
            return torch.index_select(self.x, 0, rows)
        if isinstance(rows, torch.Tensor):
            rows = rows.cpu().numpy()
        return torch.from_numpy(self.pixels.stored[rows]).to(self.device)

    def upload(self, decoded: np.ndarray) -> torch.Tensor:
        return unit_tensor(torch.from_numpy(decoded).to(self.device))

    def batches(self, parts: list) -> Iterator[torch.Tensor]:
        """The images of each part (rows) in turn; streamed ones are decoded one part ahead."""
        if not self.streamed:
            yield from (self.take(p) for p in parts)
            return
        with ThreadPoolExecutor(1, thread_name_prefix="decode") as pool:
            ahead = pool.submit(self.pixels.stored.__getitem__, parts[0]) if parts else None
            for j in range(len(parts)):
                current = ahead
                ahead = pool.submit(self.pixels.stored.__getitem__, parts[j + 1]) if j + 1 < len(parts) else None
                yield self.upload(current.result())


def _train(model, data, cfg, history, should_stop, device, live_budget, group) -> Iterator[Snapshot]:
    rank, world = (group.rank, group.world) if group is not None else (0, 1)
    model.to(device)
    model.train()
    objective = _Objective(model)
    prior = model.latent_prior()
    kl_total = not (prior.closed_form and prior.factorised)
    if group is not None:
        from latentlab.core.models.vae import VAE

        objective = group.wrap(objective, find_unused=not isinstance(model, VAE))
    gen = torch.Generator(device=device)
    gen.manual_seed(cfg.seed)
    rows = _Rows(data.x_train, device)
    test_rows = _Rows(data.x_test, device) if len(data.x_test) else None
    n, k = rows.n, model.latent_dim
    params = list(model.parameters())
    opt = loop._adam(params, cfg.lr)
    big = min(cfg.batch_size * world, n)            # the global batch
    steps_total = math.ceil(n / big) * cfg.epochs
    subset = loop._LiveSubset(n, cfg.scatter_points, live_budget, device) if cfg.scatter_points or live_budget else None

    start = last_snap = time.perf_counter()
    step = seen = good_step = 0
    good_state = loop._clone_state(model)
    win, epoch_acc = loop._Window(k, device), loop._Window(k, device)
    ceiling = None
    stop = False

    def snapshot(epoch, **extra) -> Snapshot:
        seconds = time.perf_counter() - start
        rec, kl, kl_dim = win.means()
        return Snapshot(step=step, steps_total=steps_total, epoch=epoch, epochs=cfg.epochs,
                        beta=beta_at(step, cfg.beta, cfg.warmup_steps), recon=rec, kl=kl, kl_per_dim=kl_dim,
                        seconds=seconds, samples_per_s=seen / max(seconds, 1e-9), device=device.type, **extra)

    def finish(epoch, **extra) -> Snapshot:
        weights = loop.state_to_numpy(model) if rank == 0 else None
        return snapshot(epoch, weights=weights, history=tuple(history), done=True, **extra)

    def live():
        return loop._encode_subset(model, rows, subset)

    try:
        for epoch in range(cfg.epochs):
            perm = rows.order(gen)
            starts = range(0, n, big)
            parts = [perm[i:i + big][slice(*share(len(perm[i:i + big]), rank, world))] for i in starts]
            batches = rows.batches(parts)
            for i, xb in zip(starts, batches):
                if group is None:
                    stop = stop or should_stop()
                elif step % STOP_EVERY == 0:
                    stop = group.any(stop or should_stop())
                if stop:
                    batches.close()
                    yield finish(epoch, cancelled=True, latent=live())
                    return
                count = min(big, n - i)
                eps = torch.randn((count, k), generator=gen, device=device)[slice(*share(count, rank, world))]
                beta = beta_at(step, cfg.beta, cfg.warmup_steps)
                rec, kl_sum, kl_dim = objective(xb, eps)
                # A prior that does not factorise: free bits and the penalty apply to the total KL.
                kl, free_bits = (kl_sum.unsqueeze(1), cfg.free_bits * k) if kl_total else (kl_dim, cfg.free_bits)
                loss = _loss(rec, kl, beta, free_bits, count, world, group)
                for p in params:
                    p.grad = None
                loss.backward()
                sums = torch.cat((rec.detach().sum().view(1), kl_sum.detach().sum().view(1),
                                  kl_dim.detach().sum(0))).double()
                if ceiling is None:
                    first = _reduced(group, torch.cat((sums[:2], sums.new_tensor([xb.shape[0]]))))
                    ceiling = loop._loss_ceiling(float(first[:2].sum() / first[-1]))
                opt.step()
                step += 1
                seen += count
                win.add_sums(sums, xb.shape[0])
                epoch_acc.add_sums(sums, xb.shape[0])
                last_of_epoch = i + big >= n
                # Time-based snapshots (the window's) only in one process: ranks must check at the same steps.
                due = step % cfg.snapshot_every == 0 or (group is None and cfg.snapshot_seconds is not None
                                                         and time.perf_counter() - last_snap >= cfg.snapshot_seconds)
                if due or last_of_epoch:
                    last_snap = time.perf_counter()
                    healthy, stop = _agree(group, win, ceiling, params, stop or should_stop())
                    if not healthy:
                        batches.close()
                        loop._load_state(model, good_state)
                        yield finish(epoch, latent=live(), diverged=True, error=(
                            f"Training diverged at step {step} (the loss or the weights became NaN, infinite or "
                            f"exploded); the weights from step {good_step} were kept. Try a lower learning rate."))
                        return
                    good_state, good_step = loop._clone_state(model, into=good_state), step
                    if not last_of_epoch:
                        yield snapshot(epoch, latent=live())
                        win = loop._Window(k, device)
            _reduce_window(group, epoch_acc)
            record = _epoch_record(model, len(history) + 1, cfg, step, epoch_acc, test_rows, group,
                                   time.perf_counter() - start)
            history.append(record)
            epoch_acc = loop._Window(k, device)
            extra = dict(latent=live(), record=record)
            if epoch + 1 == cfg.epochs:
                yield finish(epoch + 1, **extra)
                return
            yield snapshot(epoch + 1, weights=loop.state_to_numpy(model) if rank == 0 else None, **extra)
            win = loop._Window(k, device)
    except loop.OOM_ERRORS:
        yield finish(0, error=loop.out_of_memory(model, good_state, good_step, device, cfg.batch_size))
    finally:
        model.eval()


def _loss(rec, kl, beta: float, free_bits: float, count: int, world: int, group):
    """This rank's loss: the global batch's mean objective once DDP has averaged the gradients."""
    if group is None:
        penalty = kl_penalty(kl, free_bits)
        return rec.mean() + (penalty if beta == 1.0 else beta * penalty)
    scale = world / count
    if free_bits > 0:
        per_dim = group.sum_(kl.detach().sum(0)) / count
        kl = kl * (per_dim >= free_bits)       # the clamp's gradient gate, decided on the global batch
    return scale * (rec.sum() + beta * kl.sum())


def _reduced(group, tensor: torch.Tensor) -> torch.Tensor:
    return tensor if group is None else group.sum_(tensor)


def _reduce_window(group, win) -> None:
    """Make `win` hold the sums over every rank."""
    if group is not None:
        total = group.sum_(torch.cat((win.sums, win.sums.new_tensor([win.count]))))
        win.sums, win.count = total[:-1], int(total[-1].item())


def _agree(group, win, ceiling: float, params, stop: bool) -> tuple[bool, bool]:
    """(healthy, stop), the same on every rank: the window's sums over all ranks under the loss
    ceiling and every rank's weights bounded; stop when any rank was asked to."""
    bounded = loop._params_bounded(params)
    if group is None:
        return win.below(ceiling) and bounded, stop
    extra = win.sums.new_tensor([win.count, float(not bounded), float(stop)])
    total = group.sum_(torch.cat((win.sums, extra)))
    win.sums, win.count = total[:-3], int(total[-3].item())
    return win.below(ceiling) and total[-2].item() == 0, total[-1].item() > 0


@torch.no_grad()
def _epoch_record(model, number, cfg, step, acc, test_rows: _Rows | None, group, seconds) -> dict:
    """The epoch's history row; the test set is split between the ranks chunk by chunk, with the noise
    one process would draw, and summed over them."""
    record = loop._epoch_record(model, number, cfg, step, acc, None, seconds)
    if test_rows is None:
        return record
    rank, world = (group.rank, group.world) if group is not None else (0, 1)
    device = test_rows.device
    model.eval()
    gen = torch.Generator(device=device)
    gen.manual_seed(1234)
    test = loop._Window(model.latent_dim, device)
    for i in range(0, test_rows.n, loop.TEST_CHUNK):
        count = min(loop.TEST_CHUNK, test_rows.n - i)
        lo, hi = share(count, rank, world)
        eps = torch.randn((count, model.latent_dim), generator=gen, device=device)[lo:hi]
        part = np.arange(i + lo, i + hi)
        xb = test_rows.take(part if test_rows.streamed else torch.from_numpy(part).to(device))
        terms = elbo_terms(model, xb, eps)
        test.add(terms.rec, terms.kl, terms.kl_dim)
    model.train()
    _reduce_window(group, test)
    t_rec, t_kl, _ = test.means()
    record.update(test_recon=t_rec, test_kl=t_kl, test_elbo=-(t_rec + t_kl))
    return record
