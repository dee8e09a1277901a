"""One training job: a (paper, task, run, seed) model, resumable epoch by epoch.

Every source of randomness is a seeded ``torch.Generator`` whose state is saved with each epoch
checkpoint, so a job killed after epoch k and restarted ends bit-identical to an uninterrupted one.

The loop is the same for every paper; the paper's package builds the model (``models.build``).
A spec carries only what its paper uses: interventions, DEQ gradients, the learning-rate schedule,
gradient clipping and the divergence threshold are optional parts with documented defaults
(``specs.DEFAULTS``), read through ``specs.with_defaults``; the checkpoint keeps the spec as given.
Three opt-in settings of ``spec["train"]`` serve papers that measure more than accuracy (a spec
without them trains exactly as before they existed):
- ``measure: true``: per epoch, training memory (``measure.MemoryMeter`` on the epoch's first step,
  the same measure for every variant), and the DEQ solver's forward / backward evaluations and final residual;
- ``augment: {crop_pad}``: seeded random crop (zero padding ``crop_pad``) and horizontal flip of
  every image batch (``data.cifar.augment``);
- ``jac_reg_weight`` > 0: + weight x the Jacobian penalty at the fixed point (DEQ-JR).
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from implicit_repro import cpu, numerics
from implicit_repro.checkpoint import load_checkpoint, load_weights, save_checkpoint
from implicit_repro.data.store import load_dataset
from implicit_repro.deq import deq_fixed_point, jacobian_penalty
from implicit_repro.eager import Adam
from implicit_repro.interventions import (auxiliary_loss, forward_budget, get_intervention, initial_state,
                                         penalty_start)
from implicit_repro.io import write_jsonl
from implicit_repro.models import EquilibriumModel
from implicit_repro.papers import part
from implicit_repro.seeding import generator
from implicit_repro.specs import with_defaults
from implicit_repro.tasks import get_task

RESUME_KEYS = ("model", "optimizer", "epoch", "history", "rng", "spec")
# Test hook: kill the process (SIGKILL, nothing cleaned up) right after this epoch's checkpoint.
KILL_AFTER_EPOCH_ENV = "IMPLICIT_REPRO_KILL_AFTER_EPOCH"


@dataclass
class TrainJob:
    # paper, task, seed, train (specs.TRAIN_KEYS), what the paper's model reads, and specs.DEFAULTS' parts it uses
    spec: dict
    data_path: Path
    model_path: Path
    log_path: Path

    @property
    def resume_path(self) -> Path:
        # Not a declared output, so Snakemake leaves it in place when it cleans up a killed job.
        return self.model_path.with_name(self.model_path.stem + ".resume.pt")


def make_model(spec: dict) -> EquilibriumModel:
    """The job's freshly initialized model, built (and seeded) by its paper's package."""
    return part(spec["paper"], "models").build(spec)


def trained_model(spec: dict, ckpt: dict, path: str | os.PathLike) -> EquilibriumModel:
    """The model of ``spec`` with the weights of its checkpoint ``ckpt`` (read from ``path``), in eval mode."""
    model = make_model(spec)
    load_weights(model, ckpt["model"], path)
    return model.eval()


def job_task(spec: dict):
    return get_task(spec["task"], **spec.get("task_params", {}))


def forward(model: EquilibriumModel, x: torch.Tensor, z0: torch.Tensor, iters: int, cfg: dict):
    """The training state (z after ``iters`` unrolled steps, or a DEQ's fixed point carrying the
    gradient) and a DEQ's solver statistics (None for plain backprop through the unrolled
    iterations; for a DEQ ``iters`` caps the solver's evaluations). The logits are
    ``model.readout`` of it, taken by the caller on the examples the task loss reads."""
    if cfg["gradient"] == "unrolled":
        return model.solve(x, iters, z0), None
    return deq_fixed_point(
        lambda z: model.step(z, x), z0, solver=cfg["solver"], grad=cfg["gradient"], max_iter=iters,
        tol=cfg["tol"], phantom_steps=cfg["phantom_steps"], phantom_damping=cfg["phantom_damping"],
    )


def train_split(spec: dict, data: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The training part of the easy dataset; the rest is the in-distribution test split."""
    task = job_task(spec)
    n_train = int(len(data["inputs"]) * with_defaults(spec)["data"]["train_fraction"])
    return task.model_input(data["inputs"][:n_train]), task.target(data["targets"][:n_train])


def learning_rate(cfg: dict, epoch: int) -> float:
    """Linear warm-up, then step decay at the milestones (the DT-net recipe)."""
    if epoch < cfg["warmup_epochs"]:
        return cfg["lr"] * (epoch + 1) / (cfg["warmup_epochs"] + 1)
    return cfg["lr"] * cfg["lr_gamma"] ** sum(epoch >= m for m in cfg["lr_milestones"])


class _Diverged(Exception):
    pass


def train(job: TrainJob, device: str = "cpu", keep_resume: bool = False) -> dict:
    """Train ``job``'s model to its checkpoint and log, resuming from its epoch checkpoint if one is
    there. ``keep_resume``: leave the epoch checkpoint in place (a job of several models deletes its
    members' only once all are written, so a kill mid-way loses no finished member: batches.py)."""
    spec = job.spec  # as given: what the checkpoint records and a resume compares
    settings = with_defaults(spec)  # what the loop reads
    cfg = settings["train"]
    task = job_task(spec)
    intervention = get_intervention(settings["intervention"])
    x_all, y_all = train_split(settings, load_dataset(job.data_path))
    model = make_model(spec).to(device)
    opt = Adam(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])  # torch.optim.Adam's arithmetic
    ident = (spec["paper"], spec["task"], spec["seed"])
    rng = {"order": generator(*ident, "order"), "intervention": generator(*ident, "intervention")}
    if cfg.get("augment"):
        rng["augment"] = generator(*ident, "augment")
    if cfg.get("jac_reg_weight", 0) > 0:  # the penalty's probes: saved with the epoch, so a resume replays none
        rng["jacobian"] = generator(*ident, "jacobian")
    start_epoch, history = 0, []

    if job.resume_path.exists():
        state = load_checkpoint(job.resume_path, RESUME_KEYS)
        if state["spec"] != spec:
            print(f"{job.resume_path}: written for another spec; starting over", file=sys.stderr)
        else:
            load_weights(model, state["model"], job.resume_path)
            opt.load_state_dict(state["optimizer"])
            for name, g in rng.items():
                g.set_state(state["rng"][name])
            start_epoch, history = state["epoch"], state["history"]
            print(f"resuming from {job.resume_path} at epoch {start_epoch}", file=sys.stderr)

    print(f"training {'/'.join(map(str, ident))}/{settings['intervention']} on {device} with "
          f"{torch.get_num_threads()} torch thread(s), {len(x_all)} examples", file=sys.stderr)
    status = "ok"
    for epoch in range(start_epoch, cfg["epochs"]):
        try:
            with cpu.work():
                record = _run_epoch(model, task, intervention, opt, x_all, y_all, epoch, settings, rng, device)
        except _Diverged as exc:
            history.append({"epoch": epoch, "status": "diverged", "reason": str(exc)})
            status = "diverged"
            print(f"epoch {epoch + 1}/{cfg['epochs']}: diverged ({exc}); recorded, stopping", file=sys.stderr)
            break
        history.append(record)
        print(
            f"epoch {epoch + 1}/{cfg['epochs']} loss {record['loss']:.4f} "
            f"train_acc {record['train_acc']:.3f} lr {record['lr']:.2e} {record['seconds']:.1f}s",
            file=sys.stderr,
        )
        save_checkpoint(job.resume_path, {
            "model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch + 1,
            "history": history, "rng": {k: g.get_state() for k, g in rng.items()}, "spec": spec,
        })
        if os.environ.get(KILL_AFTER_EPOCH_ENV) == str(epoch + 1):
            os.kill(os.getpid(), signal.SIGKILL)

    save_checkpoint(job.model_path, {
        "model": model.state_dict(), "status": status, "spec": spec, "epochs_completed": len(history),
        "numerics": numerics.record(device),  # of the process that finished the training
    })
    write_jsonl(job.log_path, history)
    if not keep_resume:
        job.resume_path.unlink(missing_ok=True)
    return {"status": status, "history": history}


def _run_epoch(model, task, intervention, opt, x_all, y_all, epoch, spec, rng, device) -> dict:
    cfg, params = spec["train"], spec["intervention_params"]
    pretrain = epoch < cfg["pretrain_epochs"]
    if pretrain:  # a DEQ's unrolled warm-up: its block trained as WT, no solver and no penalty
        cfg = {**cfg, "gradient": "unrolled", "iters": cfg["pretrain_iters"], "jac_reg_weight": 0.0}
    lr = learning_rate(cfg, epoch)
    for group in opt.param_groups:
        group["lr"] = lr
    model.train()
    order = torch.randperm(len(x_all), generator=rng["order"])
    batches = order.split(cfg["batch_size"])
    loss_sum, aux_sum, correct, seen, iters_sum = 0.0, 0.0, 0, 0, 0
    meter = _memory_meter(device) if cfg.get("measure") else None
    solver_log = {"bwd_nfe": [], "residual": []}
    started = time.perf_counter()
    for i, idx in enumerate(tqdm(batches, desc=f"epoch {epoch + 1}", file=sys.stderr, mininterval=10, leave=False)):
        x, y = x_all[idx], y_all[idx]
        if cfg.get("augment"):
            x = _augment(x, rng["augment"], cfg["augment"])
        x, y = x.to(device), y.to(device)
        # Drawn on the CPU generator whatever the device, so a GPU run starts from the same states.
        zeros = torch.zeros(model.state_shape(x))
        z0 = initial_state(intervention, zeros, params, rng["intervention"]).to(device)
        iters = forward_budget(intervention, cfg["iters"], params, rng["intervention"])
        extra = penalty_start(intervention, zeros, params, rng["intervention"])
        opt.zero_grad(set_to_none=True)
        # The first step of an epoch is metered (all of it, backward included: see measure.py);
        # metering costs time, and every step of an epoch has the same shapes but the last.
        with meter.step(held=(x, y, z0)) if meter and i == 0 else nullcontext():
            if extra is None:
                z, solver_stats = forward(model, x, z0, iters, cfg)
                z_penalty = None
            else:  # the penalty's run of the batch beside the task's, as one batch of both (a DEQ's
                # solver then stops when both have converged); the readout reads the task's half only
                z, solver_stats = forward(model, torch.cat([x, x]), torch.cat([z0, extra.to(device)]), iters, cfg)
                z, z_penalty = z.chunk(2)
            logits = model.readout(z)
            loss = task.loss(logits, y)
            aux = auxiliary_loss(intervention, z, z_penalty, params)
            if cfg.get("jac_reg_weight", 0) > 0 and solver_stats is not None:  # at a DEQ's fixed point
                jac = cfg["jac_reg_weight"] * jacobian_penalty(lambda z: model.step(z, x), z,
                                                               generator=rng["jacobian"])
                aux = jac if aux is None else aux + jac
            total = loss if aux is None else loss + aux
            if not torch.isfinite(total):
                raise _Diverged(f"non-finite loss {total.item()}")
            total.backward()
        if solver_stats is not None and meter is not None:
            solver_log["residual"].append(float(solver_stats.residual.mean()))
            if solver_stats.backward is not None:
                solver_log["bwd_nfe"].append(solver_stats.backward.nfe)
        if cfg["grad_clip"] is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
        opt.step()
        loss_sum += loss.item() * len(idx)  # the task loss alone, comparable across interventions
        if aux is not None:
            aux_sum += aux.item() * len(idx)
        correct += int(task.correct(logits.detach(), y).sum())
        seen += len(idx)
        iters_sum += (iters if solver_stats is None else solver_stats.nfe) * len(idx)
    mean_loss = loss_sum / seen
    # A warm-up epoch's mean loss is not held to blowup_loss: it averages in the first steps from a
    # random init, which can start far above it and recover (edge copy's sum aggregation over 10
    # iterations: 229-701 at seed 1, then 1.000 training accuracy by epoch 8). A non-finite loss
    # marks divergence in any epoch.
    limit = None if epoch < cfg["warmup_epochs"] else cfg["blowup_loss"]
    if not math.isfinite(mean_loss) or (limit is not None and mean_loss > limit):
        why = ", not finite" if not math.isfinite(mean_loss) else f" above blowup_loss {limit}"
        raise _Diverged(f"epoch loss {mean_loss:.3g}{why}")
    record = {
        "epoch": epoch, "status": "ok", "loss": mean_loss, "train_acc": correct / seen, "lr": lr,
        "mean_iters": iters_sum / seen, "seconds": round(time.perf_counter() - started, 3),
    }
    if pretrain:
        record["pretrain"] = True
    if intervention.penalty != "none" or cfg.get("jac_reg_weight", 0) > 0:
        record["aux_loss"] = aux_sum / seen  # the weighted penalty, logged apart from the task loss
    if meter is not None:
        record.update(meter.finish(model, opt), steps=len(batches), fwd_nfe=record["mean_iters"],
                      bwd_nfe=_mean_or_none(solver_log["bwd_nfe"]), residual=_mean_or_none(solver_log["residual"]))
    return record


def own_epochs(history: list[dict]) -> list[dict]:
    """The completed epochs of a training log that cost what the model itself costs: a DEQ's unrolled
    warm-up epochs (``pretrain``) train its block as WT and are left out."""
    return [h for h in history if h.get("status") == "ok" and not h.get("pretrain")]


def _memory_meter(device: str):
    from implicit_repro.measure import MemoryMeter

    return MemoryMeter(device)


def _augment(x: torch.Tensor, g: torch.Generator, settings: dict) -> torch.Tensor:
    from implicit_repro.data.cifar import augment

    return augment(x, g, pad=settings["crop_pad"])


def _mean_or_none(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None
