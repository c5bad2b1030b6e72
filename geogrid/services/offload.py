"""CPU-heavy work out of the serving process (issue 10, ABUSE).

A worker process of the API serves every request on one event loop and one GIL. Expensive
analytics — Gi* with its permutations (numba compiles esda's engine at the first call:
~40 s of CPU holding the GIL), windowed metrics (pandas, geometries), their JSON — hold
that GIL for hundreds of milliseconds at a time, and every request of the process (a
``/locate`` of 5 ms) waits behind them (``bench.abuse``: p99 of seconds).

:class:`Offload` runs such work in a small pool of processes of its own, started with
``spawn`` (:meth:`Offload.start`, when the app starts) and lowered with :func:`os.nice`, so
the serving process keeps its GIL and the kernel gives the cores to the serving processes
first. A job is a module-level
function (picklable by name) whose arguments and result pickle; it reaches the database by
URL (:func:`engine`), with a cache of units per worker process (:func:`unit_cache`).
Exceptions come back as raised (:class:`geogrid.errors.GeogridError` and database errors
included, even those whose constructor pickle cannot call again).
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import multiprocessing
import os
import pickle
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from sqlalchemy import Engine

from geogrid.errors import DatabaseUnavailable
from geogrid.services.unitcache import UnitCache
from geogrid.store import get_engine

__all__ = ["Offload", "WorkerLost", "engine", "unit_cache"]

log = logging.getLogger("geogrid.services.offload")

T = TypeVar("T")

#: the units cached by this process when it is a pool worker (its state, one per process)
_UNITS = UnitCache()


class WorkerLost(DatabaseUnavailable):
    """A worker process of the pool died while running a job (503: try again)."""


def engine(url: str) -> Engine:
    """The pooled engine of ``url`` in this process (a job's way to the database)."""
    return get_engine(url)


def unit_cache() -> UnitCache:
    """This worker process's cache of units (a job's ``cache``)."""
    return _UNITS


def _start(nice: int) -> None:
    """A pool worker's start: lower its priority."""
    if nice:
        try:
            os.nice(nice)
        except OSError:  # pragma: no cover - not allowed here: run at the same priority
            log.warning("offload worker: os.nice(%s) refused", nice)


class _Rebuilt:
    """An exception whose pickle does not round-trip (its ``__init__`` takes other
    arguments than its ``args``), carried as class, args and attributes."""

    def __init__(self, cls: type[BaseException], args: tuple[Any, ...], attrs: dict[str, Any]):
        self.cls, self.args, self.attrs = cls, args, attrs

    def exception(self) -> BaseException:
        exc = self.cls.__new__(self.cls)
        exc.args = self.args
        exc.__dict__.update(self.attrs)
        return exc


def _portable(exc: Exception) -> Exception | _Rebuilt:
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        pass
    state = _Rebuilt(type(exc), exc.args, dict(vars(exc)))
    try:
        pickle.loads(pickle.dumps(state))
        return state
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _import(modules: tuple[str, ...]) -> None:
    for name in modules:
        importlib.import_module(name)
    # the modules live as long as the worker: frozen out of the garbage collector's sight,
    # as the serving process does after start-up (api.main) — a full collection walked
    # them all, ~100 ms in the middle of a month of grid metrics (issue 12)
    gc.freeze()


def _call(fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        return True, fn(*args, **kwargs)
    except Exception as exc:
        return False, _portable(exc)


def _outcome(result: tuple[bool, Any]) -> Any:
    ok, value = result
    if ok:
        return value
    raise value.exception() if isinstance(value, _Rebuilt) else value


class Offload:
    """A pool of ``processes`` worker processes at niceness ``nice`` (none: jobs run in the
    caller's thread). Safe to share between threads; :meth:`close` ends the workers."""

    def __init__(self, processes: int = 1, nice: int = 10):
        self.processes, self.nice = max(0, processes), nice
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    self.processes,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start,
                    initargs=(self.nice,),
                )
            return self._pool

    def _renew(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is broken:
                self._pool = None
        broken.shutdown(wait=False, cancel_futures=True)

    def _submit(self, fn: Callable[..., Any], args: Any, kwargs: Any) -> tuple[Any, Future[Any]]:
        pool = self._executor()
        try:
            return pool, pool.submit(_call, fn, args, kwargs)
        except BrokenProcessPool:  # a worker died (killed, out of memory): a new pool
            self._renew(pool)
            pool = self._executor()
            return pool, pool.submit(_call, fn, args, kwargs)

    def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in a worker (in this thread without workers), waited for."""
        if not self.processes:
            return fn(*args, **kwargs)
        pool, future = self._submit(fn, args, kwargs)
        try:
            done = future.result()
        except BrokenProcessPool as exc:
            self._renew(pool)
            raise WorkerLost("the worker process running the request stopped") from exc
        out: T = _outcome(done)
        return out

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in a worker, awaited without holding the event loop (in
        the loop's default thread pool without workers). A caller that goes away cancels a
        job that has not started."""
        if not self.processes:
            return await asyncio.to_thread(fn, *args, **kwargs)
        pool, future = self._submit(fn, args, kwargs)
        try:
            done = await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BrokenProcessPool as exc:
            self._renew(pool)
            raise WorkerLost("the worker process running the request stopped") from exc
        out: T = _outcome(done)
        return out

    def start(self, modules: tuple[str, ...] = ()) -> None:
        """Start the workers now (in the background) and have them import ``modules``, so
        that the first job does not wait for them."""
        if not self.processes:
            return
        try:
            for _ in range(self.processes):
                self._submit(_import, (modules,), {})
        except RuntimeError:  # e.g. spawned from an unguarded main module: at first job
            log.warning("offload workers not started", exc_info=True)

    def close(self) -> None:
        """End the workers, a job running included (its answer has no one to go to)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is None:
            return
        # the executor has no public way to stop a running job: its processes, by pid
        workers = list(getattr(pool, "_processes", {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in workers:
            if process.is_alive():
                process.terminate()
