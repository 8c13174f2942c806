"""Where runs execute: in this process, in a local process pool, or on a Dask cluster.

All three are used through the ``concurrent.futures.Executor`` interface, so the sweep
code is the same for each; a Dask ``Client`` provides one via ``get_executor()``.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from distributed import Client


PARENT_POLL_S = 0.5
"""How often a local worker checks that the sweep that started it is still alive."""


class SweepError(Exception):
    """A sweep cannot start: bad options, an unreachable cluster, a results clash.

    ``str(error)`` is the one line shown to the user.
    """


@dataclass
class Backend:
    """An open executor and what it offers.

    ``slots()`` is the number of runs it can execute at once (re-read, since a cluster
    may gain workers); ``max_chunk`` caps runs per task; ``abandon()`` stops in-flight
    work at once when the user insists; ``restart()``, where given, replaces an executor
    that broke (a local pool whose worker process died) with a fresh one.
    """

    executor: Executor
    description: str
    slots: Callable[[], int]
    max_chunk: int
    abandon: Callable[[], None]
    restart: Callable[[], None] | None = None


class InlineExecutor(Executor):
    """Runs each submitted call at once, in this process (``--workers 1``)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:
            future.set_exception(exc)
        return future


@contextmanager
def open_backend(
    workers: int | None = None, client: Client | None = None, scheduler: str | None = None
) -> Iterator[Backend]:
    """The executor for a sweep, closed (or released) on exit.

    ``client``: a ``dask.distributed.Client`` to use (left open); ``scheduler``: the
    address of a Dask scheduler to connect to; otherwise ``workers`` local processes
    (default: one per core), or this process alone when ``workers == 1``.
    """
    check_options(workers, client, scheduler)
    if client is not None:
        yield _dask_backend(client)
    elif scheduler is not None:
        client = _connect(scheduler)
        try:
            yield _dask_backend(client)
        finally:
            client.close()
    elif workers == 1:
        yield Backend(InlineExecutor(), "this process", lambda: 1, 1, lambda: None)
    else:
        with _process_pool(workers or os.cpu_count() or 1) as backend:
            yield backend


def check_options(
    workers: int | None = None, client: Client | None = None, scheduler: str | None = None
) -> None:
    """Raise ``SweepError`` unless the options name exactly one way to execute runs."""
    if client is not None and scheduler is not None:
        raise SweepError("give a Dask client or a scheduler address, not both")
    if workers is not None and (client is not None or scheduler is not None):
        raise SweepError("the number of workers is set by the Dask cluster; drop --workers")
    if workers is not None and workers < 1:
        raise SweepError(f"--workers must be at least 1, not {workers}")


@contextmanager
def _process_pool(workers: int) -> Iterator[Backend]:
    # forkserver: fork is unsafe once threads run (progress bar, Dask), spawn re-imports
    # everything per worker; the server imports the model once and forks workers from it
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload(["mailnet.sweep.worker"])

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=_init_worker,
            initargs=(os.getpid(), _start_time(os.getpid())),
        )

    backend = Backend(
        new_pool(), f"{workers} local processes ({method})", lambda: workers, 64, lambda: None
    )
    abandoned = False

    def abandon() -> None:
        nonlocal abandoned
        abandoned = True
        _terminate(backend.executor)

    def restart() -> None:
        # a dead worker breaks the whole pool: the others are stopped and a new pool starts
        _terminate(backend.executor)
        backend.executor.shutdown(wait=True, cancel_futures=True)
        backend.executor = new_pool()

    backend.abandon = abandon
    backend.restart = restart
    try:
        yield backend
    finally:
        backend.executor.shutdown(wait=not abandoned, cancel_futures=True)


def _terminate(pool: Executor) -> None:
    # the standard library has no public way to stop running calls before 3.14
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()


def _init_worker(sweep_pid: int, sweep_started: str | None) -> None:
    # Ctrl-C reaches the whole process group; the parent decides what stops, and workers
    # must not die mid-run printing tracebacks
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watch = threading.Thread(target=_exit_with_sweep, args=(sweep_pid, sweep_started), daemon=True)
    watch.start()


def _exit_with_sweep(pid: int, started: str | None) -> None:
    """Exit once the sweep process ``pid`` is gone, so that no worker outlives it.

    The worker's own parent cannot tell: it is the fork server, which stays alive as long
    as any worker does. ``started`` (the process's start time) tells a reused pid apart.
    """
    while _alive(pid, started):
        time.sleep(PARENT_POLL_S)
    os._exit(1)


def _stat(pid: int) -> list[str] | None:
    """Fields 3 onwards of /proc/PID/stat (Linux), or None where unreadable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses; what follows is plain
    return stat.rsplit(")", 1)[-1].split()


def _start_time(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks after boot), or None where unknown."""
    fields = _stat(pid)
    return fields[19] if fields else None


def _alive(pid: int, started: str | None) -> bool:
    """Whether process ``pid``, started at ``started``, still runs (a zombie does not)."""
    if started is not None:
        fields = _stat(pid)
        return fields is not None and fields[0] not in {"Z", "X"} and fields[19] == started
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _connect(address: str) -> Client:
    # Dask loads only for a run on a cluster: local sweeps never pay for it
    from distributed import Client  # noqa: PLC0415

    try:
        client = Client(address, timeout="20s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise SweepError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    try:
        client.get_versions(check=True)
    except ValueError as exc:
        client.close()
        raise SweepError(
            f"the Dask cluster at {address} has mismatched versions: {' '.join(str(exc).split())}"
        ) from None
    return client


def _dask_backend(client: Client) -> Backend:
    # pure=False: runs are never deduplicated by argument hash, and hashing is skipped
    executor = client.get_executor(pure=False)
    cache: dict[str, float] = {"at": -1e9, "slots": 1}

    def slots() -> int:
        now = time.monotonic()
        if now - cache["at"] > 5.0:
            cache["slots"] = max(1, sum(client.nthreads().values()))
            cache["at"] = now
        return int(cache["slots"])

    return Backend(
        executor,
        f"Dask cluster at {client.scheduler.address if client.scheduler else '?'}",
        slots,
        64,
        lambda: executor.shutdown(wait=False),
    )
