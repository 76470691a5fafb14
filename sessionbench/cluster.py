"""Jobs on a dask or ray cluster, through each one's own API, with results written where the
client asked.

The results directory is made absolute on the client and every worker is asked first whether
it can write there (a worker on another machine needs a shared file system); a run fails
early, naming the path and the workers, when one cannot. Each job is one task (dask
``Client.submit``, ray ``remote``): a task whose worker dies is that job's failure, named, and
the other jobs go on, as in the local pool of :mod:`sessionbench.workers`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = ["ClusterError", "can_write", "connect", "disconnect", "run_on_cluster"]


class ClusterError(RuntimeError):
    """The cluster cannot run the jobs: an extra not installed, workers that cannot write."""


def connect(backend: str, address: str | None) -> Any:
    """A client of the dask scheduler or ray head at ``address`` (None: a local cluster).

    Raises:
        ClusterError: the backend's optional extra is not installed.
    """
    try:
        if backend == "dask":
            from distributed import Client

            return Client(address) if address else Client(processes=True)
        import ray

        if address:
            ray.init(address=address)
        else:
            ray.init(include_dashboard=False)
        return ray
    except ImportError as e:
        raise ClusterError(f"--backend {backend} needs the optional extra: pip install 'sessionbench[{backend}]' ({e.name} missing)") from e


def disconnect(backend: str, client: Any) -> None:
    if client is None:
        return
    if backend == "dask":
        client.close()
    else:
        client.shutdown()


def run_on_cluster(
    backend: str,
    target: Callable[..., Any],
    tasks: Sequence[tuple[Any, ...]],
    results_dir: Path,
    on_error: Callable[[int, str], Any],
) -> Iterator[tuple[int, Any]]:
    """Run ``target(*task)`` for every task on the connected cluster; yield ``(index, value)``
    in task order. A task that fails inside the cluster (its worker died, it could not be
    unpickled) yields ``on_error(index, reason)`` instead.

    Raises:
        ClusterError: no cluster is connected, or a worker cannot write to ``results_dir``.
    """
    if backend == "dask":
        yield from _dask(target, tasks, results_dir, on_error)
    elif backend == "ray":
        yield from _ray(target, tasks, results_dir, on_error)
    else:
        raise ValueError(f"backend must be dask or ray, got {backend!r}")


def can_write(folder: str) -> str | None:
    """None if this process can create a file in ``folder`` (made if missing), else why not."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as e:
        return f"{type(e).__name__}: {e.strerror or e}"
    return None


def _refuse(results_dir: Path, problems: dict[str, str | None]) -> None:
    bad = {worker: why for worker, why in problems.items() if why}
    if bad:
        listed = "; ".join(f"{worker}: {why}" for worker, why in sorted(bad.items()))
        raise ClusterError(
            f"--results-dir {results_dir}: {len(bad)} of {len(problems)} workers cannot write there ({listed}); "
            "give a directory on a file system every worker shares"
        )


def _dask(target: Callable[..., Any], tasks: Sequence[tuple[Any, ...]], results_dir: Path, on_error: Callable[[int, str], Any]) -> Iterator[tuple[int, Any]]:
    from distributed import get_client

    try:
        client = get_client()
    except ValueError as e:
        raise ClusterError("--backend dask: no dask client is connected") from e
    _refuse(results_dir, client.run(can_write, str(results_dir)))
    futures = [client.submit(target, *task, pure=False) for task in tasks]
    for index, future in enumerate(futures):
        try:
            value = future.result()
        except Exception as e:  # noqa: BLE001 - KilledWorker, CancelledError, ...: this job's failure
            value = on_error(index, f"{type(e).__name__} on the dask cluster: {e}")
        yield index, value


def _ray(target: Callable[..., Any], tasks: Sequence[tuple[Any, ...]], results_dir: Path, on_error: Callable[[int, str], Any]) -> Iterator[tuple[int, Any]]:
    import ray

    if not ray.is_initialized():
        raise ClusterError("--backend ray: ray is not initialised")
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    check = ray.remote(num_cpus=0)(can_write)
    answers = ray.get([check.options(scheduling_strategy=_on_node(n)).remote(str(results_dir)) for n in nodes])
    _refuse(results_dir, {n.get("NodeManagerAddress", "?") + f" ({n['NodeID'][:8]})": a for n, a in zip(nodes, answers)})
    remote = ray.remote(max_retries=0)(target)
    refs = [remote.remote(*task) for task in tasks]
    for index, ref in enumerate(refs):
        try:
            value = ray.get(ref)
        except ray.exceptions.RayError as e:  # a dead worker, a task that could not run
            value = on_error(index, f"{type(e).__name__} on the ray cluster: {str(e).splitlines()[0]}")
        yield index, value


def _on_node(node: dict[str, Any]) -> Any:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return NodeAffinitySchedulingStrategy(node_id=node["NodeID"], soft=False)
