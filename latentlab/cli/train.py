"""`latentlab train`: headless training with a progress bar, saved atomically at every epoch end."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from .output import _bar, _fmt, _short, _warn, refuse_overwriting_inputs


def cmd_train(args) -> int:
    from latentlab.core.data.specs import load_dataset
    from latentlab.core.files.atomic import prepare_out
    from latentlab.core.files.checkpoint import load_checkpoint
    from latentlab.core.files.model_folders import wants_folder
    from latentlab.core.models.config import ModelConfig, TrainConfig
    from latentlab.core.models.vae import build_model
    from latentlab.core.training.device import describe
    from latentlab.core.training.distributed import PeerLost

    # The save path is checked before anything else, so a bad one costs no training; a run that
    # would replace an existing file writes beside it until it has finished (see _Outcome). A
    # fine-tuned diffusers or pythae model named without .safetensors goes back to its own folder format.
    home = bool(args.model) and wants_folder(args.out)
    if not home and args.out.suffix.lower() != ".safetensors":
        raise ValueError(f"--out names the .safetensors file to write, not {_short(str(args.out))}")
    refuse_overwriting_inputs(args, args.dataset)
    target = args.out if home else prepare_out(args.out)
    # Under torchrun this process is one rank: it joins the others, and only rank 0 writes and prints.
    device, group = _rank_and_device(args.device)
    main = group is None or group.main
    world = 1 if group is None else group.world
    data = load_dataset(args.dataset, seed=args.seed)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, beta=args.beta,
                      warmup_steps=args.warmup_steps, free_bits=args.free_bits, seed=args.seed,
                      device=device.type, scatter_points=0)
    history: list = []
    if args.model:
        model, history = _foreign_for_training(args, data, device)
        if home:
            from latentlab.core.files.model_folders import check_folder_out

            check_folder_out(model, args.out)
    elif args.resume:
        ckpt = load_checkpoint(args.resume)
        if main:
            _warn(ckpt.warnings)
        model_cfg, history = ckpt.config, list(ckpt.history)
        if model_cfg.image_shape != data.image_shape:
            raise ValueError(f"{args.resume} expects images of shape {model_cfg.image_shape}, "
                             f"but {args.dataset} has {data.image_shape}")
    else:
        model_cfg = ModelConfig(image_shape=data.image_shape, latent_dim=args.latent_dim, arch=args.arch,
                                hidden=args.hidden, likelihood=args.likelihood or "bernoulli")
    if not args.model:
        _check_fits(model_cfg, data, cfg.batch_size, device)
        model = ckpt.model if args.resume else build_model(model_cfg, seed=args.seed)
    stop = {"flag": False}

    def on_sigint(*_):
        if stop["flag"]:  # the second Ctrl+C: quit now; saves are atomic, so every file is whole
            os._exit(130)
        stop["flag"] = True

    previous = signal.signal(signal.SIGINT, on_sigint)
    if group is not None:
        from latentlab.core.training.distributed import stop_on_signals

        stop_on_signals(stop)
    # A terminal gets a live bar; a log (stderr not a terminal, or --json) one line per epoch.
    live = sys.stderr.isatty() and not args.json
    if not args.json and main:
        n_params = sum(p.numel() for p in model.parameters())
        ranks = f" on {world} ranks, batch {cfg.batch_size:,} each ({cfg.batch_size * world:,} in all)" if world > 1 else ""
        print(f"Training {model.describe()}, {n_params:,} parameters, on {data.name} "
              f"({len(data.x_train):,} train / {len(data.x_test):,} test) on {describe(device)}{_threads(device)}{ranks}.",
              file=sys.stderr)

    try:
        return _run(args, model, data, cfg, history, group, target, stop, previous, live, home)
    except PeerLost as exc:
        # The process group is broken: leave without the interpreter's shutdown, which would wait on it.
        print(f"latentlab: error: {_short(str(exc))}", file=sys.stderr, flush=True)
        os._exit(1)


def _run(args, model, data, cfg, history, group, target, stop, previous, live, home) -> int:
    import torch

    from latentlab.core.files.atomic import BackgroundWriter
    from latentlab.core.files.model_folders import save_home
    from latentlab.core.files.model_spec import model_bytes
    from latentlab.core.files.preview import compute_preview
    from latentlab.core.models.vae import VAE
    from latentlab.core.training.sharded import train

    main = group is None or group.main
    world = 1 if group is None else group.world
    last = None
    saved = False
    # Saved at every epoch end so a crash or Ctrl-C loses at most one epoch; the bytes are taken
    # between steps and written (with its fsync) on another thread while the next epoch trains.
    writer = BackgroundWriter()
    # The reported time and samples/s cover the training as one waits for it: from here to the last
    # checkpoint on disk (every epoch's test pass and save, the final latent preview); not start-up.
    started = time.perf_counter()
    try:
        try:
            for snap in train(model, data, cfg, history=history, should_stop=lambda: stop["flag"], group=group):
                last = snap
                if snap.record is not None:
                    history.append(snap.record)
                if main and (snap.record is not None or (snap.done and not snap.diverged)):
                    # The finished model also carries its latent preview, for a window's first light.
                    final = snap.done and not snap.cancelled and isinstance(model, VAE)
                    if home:
                        save_home(model, args.out)
                    else:
                        writer.submit(target, model_bytes(model, dataset=data.spec, history=history, train_config=cfg,
                                                          preview=compute_preview(model, data) if final else None))
                    saved = True
                if main:
                    _progress(snap, live, f"  batch {cfg.batch_size:,}×{world} ranks" if world > 1 else "")
        finally:
            writer.flush()
        seconds = time.perf_counter() - started
        if main and not (last.error or last.cancelled) and target != args.out:
            _replace(target, args.out)
    finally:
        if not stop["flag"]:  # after a Ctrl+C the handler stays: a second one exits quietly, even at shutdown
            signal.signal(signal.SIGINT, previous)
    if group is not None:
        group.close()
    if not main:
        return 1 if last.error else 130 if last.cancelled else 0
    if live:
        print(file=sys.stderr)
    if last.error:
        print(f"latentlab: error: {_short(last.error)} {_kept(args.out, target, saved)}", file=sys.stderr)
        return 1
    rec = history[-1] if history else {}
    trained = last.samples_per_s * last.seconds   # the examples the steps went through
    result = {
        "out": str(args.out if not last.cancelled else target), "dataset": data.spec, "device": cfg.device,
        "epochs": len(history),
        "train": {"recon": rec.get("recon"), "kl": rec.get("kl"), "elbo": rec.get("elbo")},
        "test": {"recon": rec.get("test_recon"), "kl": rec.get("test_kl"), "elbo": rec.get("test_elbo")},
        "seconds": round(seconds, 3), "samples_per_s": round(trained / seconds, 1), "cancelled": last.cancelled,
        "batch_size": cfg.batch_size, "global_batch_size": cfg.batch_size * world, "world_size": world,
        "threads": torch.get_num_threads(),
    }
    if args.json:
        print(json.dumps(result))
    else:
        t = result["test"]
        where = f"stopped early: {_kept(args.out, target, saved)}" if last.cancelled else f"done: saved {_short(str(args.out))}."
        print(f"{where} Test ELBO {_fmt(t['elbo'])} nats (recon {_fmt(t['recon'])}, KL {_fmt(t['kl'])}), "
              f"{result['samples_per_s']:,.0f} samples/s.", file=sys.stderr)
    return 130 if last.cancelled else 0


def _threads(device) -> str:
    """", 2 threads" on the CPU: fewer than the cores when other processes keep some busy (core.cpu_load)."""
    import torch

    return f", {torch.get_num_threads()} thread{'s' if torch.get_num_threads() != 1 else ''}" if device.type == "cpu" else ""


def _rank_and_device(requested: str):
    """(device, Group) of this rank under torchrun, or (the device, None) in a plain process."""
    from latentlab.core.training.device import resolve_device
    from latentlab.core.training.distributed import Group, rank_device, ranks_from_environ

    ranks = ranks_from_environ()
    if ranks is None:
        return resolve_device(requested), None
    device = rank_device(requested, ranks.local_rank)
    return device, Group(ranks, device)


def _kept(out: Path, target: Path, saved: bool) -> str:
    """Where this run's weights are, for a run that stopped or diverged."""
    if target == out:
        return f"Saved the last good weights to {_short(str(out))}." if saved else "Nothing was saved."
    kept = f"{_short(str(out))} was left unchanged"
    return f"{kept}; this run's last good weights are in {_short(str(target))}." if saved else f"{kept}."


def _replace(src: Path, dst: Path) -> None:
    from latentlab.core.errors import CheckpointError

    try:
        os.replace(src, dst)
    except OSError as exc:
        raise CheckpointError(f"Cannot replace {_short(str(dst))} ({exc.strerror or exc}); "
                              f"the new weights are in {_short(str(src))}.") from None


def _check_fits(model_cfg, data, batch_size: int, device) -> None:
    from latentlab.core.training.budget import check_training_fits

    check_training_fits(model_cfg, data.x_train.shape[0] + data.x_test.shape[0], batch_size, device,
                        pixel_bytes=data.pixel_bytes)


_last_draw = [0.0]


def _progress(snap, live: bool, ranks: str = "") -> None:
    if not live:
        if snap.record is not None:
            r = snap.record
            print(f"epoch {r.get('epoch', snap.epoch + 1)}/{snap.epochs}  ELBO {r['elbo']:.2f}  recon {r['recon']:.2f}  "
                  f"KL {r['kl']:.2f}  test ELBO {r.get('test_elbo', float('nan')):.2f}  "
                  f"{snap.samples_per_s:,.0f} samples/s{ranks}", file=sys.stderr, flush=True)
        return
    now = time.monotonic()
    if not snap.done and now - _last_draw[0] < 0.1:
        return
    _last_draw[0] = now
    sys.stderr.write(f"\repoch {min(snap.epoch + 1, snap.epochs)}/{snap.epochs} {_bar(snap.fraction)}  "
                     f"ELBO {snap.elbo:9.2f}  recon {snap.recon:8.2f}  KL {snap.kl:6.2f}  "
                     f"{snap.samples_per_s:9,.0f} samples/s{ranks} ")
    sys.stderr.flush()


def _foreign_for_training(args, data, device):
    """A copy of the user's model (or a checkpoint) to fine-tune, checked on the dataset's images."""
    from latentlab.core.errors import ModelError
    from latentlab.core.files.model_spec import open_model

    if args.resume:
        raise ValueError("--resume and --model both name the model to train; give one of them")
    opened = open_model(args.model, weights=args.weights, likelihood=args.likelihood, device=device)
    model = opened.check(data.x_train[:8])
    _warn(opened.warnings)
    if model.deterministic:
        raise ModelError(f"{model.describe()} is a deterministic autoencoder: latentlab fine-tunes with the ELBO, "
                         "which needs q(z|x).")
    if not model.trainable:
        raise ModelError(f"{model.describe()} has no trainable parameters, so there is nothing to fine-tune.")
    return model, opened.history
