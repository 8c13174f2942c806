"""A wall-clock limit on one run, enforced in whatever thread runs it.

A worker process runs its tasks in its main thread, a Dask worker in a pool thread, and
``--workers 1`` in the sweep's own thread, so the limit cannot rely on signals (delivered
to the main thread only). Instead a timer thread raises :class:`RunTimeout` in the running
thread through CPython's ``PyThreadState_SetAsyncExc``: the exception arrives at the next
bytecode boundary, which a simulation loop reaches every few microseconds. A run blocked
inside one long C call sees it when the call returns.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class RunTimeout(Exception):
    """A run took longer than its limit (``--run-timeout``)."""


# PYFUNCTYPE keeps the GIL held, as every C-API call needs; the exception is given as its
# class (CPython instantiates it when raising), and NULL clears one that is pending
_set_async_exc = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.py_object)(
    ("PyThreadState_SetAsyncExc", ctypes.pythonapi)
)
_clear_async_exc = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)(
    ("PyThreadState_SetAsyncExc", ctypes.pythonapi)
)


@contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Raise :class:`RunTimeout` (without a message: the caller knows the limit) in this
    thread if the block runs longer than ``seconds`` (wall clock); ``None`` sets no limit.

    The exception can arrive anywhere within the ``with`` statement, entering and leaving
    included, but never after it: code inside must not swallow it silently, and the
    caller catches it around the ``with`` statement.
    """
    if seconds is None:
        yield
        return
    target = threading.get_ident()
    lock = threading.Lock()
    state = {"active": True, "fired": False}

    def expire() -> None:
        with lock:
            if state["active"]:
                state["fired"] = True
                _set_async_exc(target, RunTimeout)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    try:
        timer.start()  # inside the try: a limit shorter than the start is cleaned up too
        yield
    finally:
        with lock:
            state["active"] = False
            timer.cancel()
            if state["fired"]:
                # fired but not yet raised (the block was ending): never let it escape later
                _clear_async_exc(target, None)
