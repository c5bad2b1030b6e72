"""A local Dask cluster for the benches (and the tests of the scale path).

with local_client(2) as client:   # 2 single-threaded worker processes
    scale.dask_metrics(engine, folder, "grid", client=client, …)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from distributed import Client, LocalCluster

__all__ = ["local_client"]


@contextmanager
def local_client(n_workers: int, *, processes: bool = True) -> Iterator[Client]:
    """A client of a local cluster of ``n_workers`` single-threaded workers (processes, or
    threads of this process), without a dashboard; both closed at the end."""
    with (
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=processes,
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client
