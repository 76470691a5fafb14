"""Local parallel jobs, one fresh process per job, so that a worker that dies costs its own job
and nothing else.

A pool whose worker is killed (out of memory, a segfault in a native library, ``kill -9``)
breaks as a whole in joblib's loky and in ``concurrent.futures``: the jobs queued behind it are
lost and nobody can say which job killed it. Here each job runs in its own ``spawn``-ed process
that sends its outcome back through a pipe; a process that exits without sending one is that
job's failure, named with its exit code or signal, and the scheduler starts the next job.
Starting a process costs a second or two of imports, against jobs of minutes to hours.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

__all__ = ["run_in_processes"]

log = logging.getLogger(__name__)


def run_in_processes(
    target: Callable[..., Any],
    tasks: Sequence[tuple[Any, ...]],
    n_workers: int,
    on_death: Callable[[int, str], Any],
) -> Iterator[tuple[int, Any]]:
    """Run ``target(*task)`` for every task, at most ``n_workers`` at once, each in a fresh
    process; yield ``(task index, return value)`` as they finish.

    Args:
        target: A module-level function (it is pickled by reference); its return value must
            pickle.
        tasks: The argument tuples.
        n_workers: Processes at once.
        on_death: Called with (task index, reason) when a process ends without returning; its
            return value is yielded in place of the task's.
    """
    context = multiprocessing.get_context("spawn")
    pending = list(enumerate(tasks))[::-1]
    running: dict[Connection, tuple[int, Any]] = {}
    try:
        while pending or running:
            while pending and len(running) < n_workers:
                index, task = pending.pop()
                receive, send = context.Pipe(duplex=False)
                # not a daemon, so that a job may start processes of its own (a DataLoader's workers)
                process = context.Process(target=_child, args=(send, target, task))
                process.start()
                send.close()  # the child holds the only writing end: EOF when it dies
                running[receive] = (index, process)
            for conn in wait(list(running)):
                index, process = running.pop(conn)  # type: ignore[call-overload]
                error: Exception | None = None
                try:
                    value = conn.recv()  # before joining: a child blocks in send until it is read
                except Exception as e:  # noqa: BLE001 - EOF: it died; anything else: its answer is unreadable
                    error = e
                finally:
                    conn.close()
                _end(process)
                if isinstance(error, (EOFError, OSError)):
                    value = on_death(index, _death(process.exitcode))
                elif error is not None:
                    value = on_death(index, f"its result could not be read back ({type(error).__name__}: {error})")
                yield index, value
    finally:
        for conn, (_, process) in running.items():
            process.terminate()
            process.join()
            conn.close()


def _end(process: Any, grace: float = 30.0) -> None:
    """Wait for a worker that has answered (or died) to exit; one stuck at exit is terminated."""
    process.join(grace)
    if process.is_alive():
        process.terminate()
        process.join()


def _child(send: Connection, target: Callable[..., Any], task: tuple[Any, ...]) -> None:
    # Ctrl-C reaches the whole process group: the parent alone handles it (and ends its workers),
    # so that it is not reported once per worker or mistaken for a worker's death
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        send.send(target(*task))
    finally:
        send.close()


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"its worker process was killed by {name} (out of memory, or killed from outside?)"
    return f"its worker process ended with exit code {exitcode} without returning a result"
