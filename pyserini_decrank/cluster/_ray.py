"""Connecting to a Ray cluster and sizing a pool of workers on it; every failure is one ``DecrankError`` line."""

from __future__ import annotations

import logging
import math
import os
import socket
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import DecrankError

AUTO = "auto"  # the cluster RAY_ADDRESS names, or the one started on this machine by `ray start`


@dataclass
class RayOptions:
    """Where and how wide: ``address`` (``host:port``, ``ray://host:port`` or ``auto``), and the workers, each an
    actor holding the model once. ``workers=None`` takes as many as the cluster's nodes fit."""

    address: str = AUTO
    workers: int | None = None
    cpus_per_worker: float = 1.0
    gpus_per_worker: float | None = None  # default: one each where the cluster has GPUs, else none


def ray_module():
    try:
        import ray
    except ImportError:
        raise DecrankError("Ray is not installed: pip install 'pyserini-decrank[ray]'") from None
    return ray


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _check_reachable(address: str) -> None:
    """A host:port that nothing answers on fails here in seconds, not after Ray's minute of retries."""
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise DecrankError(f"Ray address {address!r} is not host:port, ray://host:port or auto")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise DecrankError(f"the Ray cluster at {address} is unreachable ({exc.strerror or exc}): start it with "
                           "`ray start --head`, or give the address `ray start` printed") from None


def connect(address: str = AUTO) -> None:
    """Joins the cluster at ``address`` as a driver (once per process)."""
    ray = ray_module()
    if ray.is_initialized():
        return
    if address != AUTO:
        _check_reachable(address)
    try:
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        if address == AUTO and not os.environ.get("RAY_ADDRESS"):
            raise DecrankError("no Ray cluster is running on this machine and RAY_ADDRESS is unset: start one with "
                               "`ray start --head`, or give the cluster's address",
                               cli="no Ray cluster is running on this machine and RAY_ADDRESS is unset: start one "
                                   "with `ray start --head`, or give --ray ADDRESS") from None
        raise DecrankError(f"cannot join the Ray cluster at {address}: {_first_line(exc)}") from None


def fitting_workers(options: RayOptions) -> tuple[int, float, float]:
    """How many workers of the asked size the cluster's live nodes hold, and each one's CPUs and GPUs;
    one error line when it holds none or fewer than asked."""
    ray = ray_module()
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    has_gpus = any(r.get("GPU", 0) >= 1 for r in nodes)
    gpus = options.gpus_per_worker if options.gpus_per_worker is not None else (1.0 if has_gpus else 0.0)
    cpus = options.cpus_per_worker
    if cpus <= 0 or gpus < 0:
        raise DecrankError(f"a worker needs a positive number of CPUs and no negative GPUs (asked {cpus:g} and {gpus:g})")
    fit = 0
    for resources in nodes:
        by_cpu = math.floor(resources.get("CPU", 0) / cpus + 1e-9)
        by_gpu = math.floor(resources.get("GPU", 0) / gpus + 1e-9) if gpus else by_cpu
        fit += min(by_cpu, by_gpu)
    wanted = options.workers or fit
    if fit == 0 or wanted > fit:
        total_cpus = sum(r.get("CPU", 0) for r in nodes)
        total_gpus = sum(r.get("GPU", 0) for r in nodes)
        size = f"{cpus:g} CPU{'s' * (cpus != 1)}" + (f" and {gpus:g} GPU{'s' * (gpus != 1)}" if gpus else "")
        holds = f"{fit} worker{'s' * (fit != 1)}" if fit else "no worker"
        asked = f", not the {wanted} asked for" if options.workers else ""
        raise DecrankError(f"the Ray cluster ({len(nodes)} nodes, {total_cpus:g} CPUs, {total_gpus:g} GPUs) holds "
                           f"{holds} of {size} each{asked}: ask for fewer or smaller workers")
    return wanted, cpus, gpus


def start_workers(actor_class: type, options: RayOptions, *args: Any) -> list:
    """``workers`` actors of ``actor_class``, each restarted (and its call retried) should its process die;
    a worker that could not start (say, it cannot read the store) is one error line."""
    ray = ray_module()
    workers, cpus, gpus = fitting_workers(options)
    remote = ray.remote(actor_class).options(num_cpus=cpus, num_gpus=gpus, max_restarts=3, max_task_retries=3)
    device = "cuda" if gpus else None
    actors = [remote.remote(*args, threads=max(1, int(cpus)), device=device) for _ in range(workers)]
    for problem in call(ray.get, [a.problem.remote() for a in actors]):
        if problem:
            raise DecrankError(problem)
    return actors


def call(get: Callable, *args: Any) -> Any:
    """``ray.get`` and friends, a worker's ``DecrankError`` raised as it is and a worker lost for good as one line."""
    ray = ray_module()
    try:
        return get(*args)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, DecrankError):
            raise DecrankError(str(cause), cli=cause.cli_message) from None
        raise
    except ray.exceptions.RayActorError as exc:
        raise DecrankError(f"a Ray worker died and could not be restarted ({_first_line(exc)}); run the command "
                           "again to resume") from None


def set_worker_threads(threads: int) -> None:
    """A worker's torch and faiss use the CPUs Ray gave it, not every core of its node."""
    import faiss
    import torch

    torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)


def node_name() -> str:
    return socket.gethostname()
