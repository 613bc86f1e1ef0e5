"""One long-lived thread that owns a model: load, generate and free all run on it.

Why not a ThreadPoolExecutor: MLX keeps thread-local state whose C++ destructors run when the
thread exits and take the GIL; a thread that has used MLX and exits while the interpreter shuts
down aborts the process ("terminate called without an active exception", see ml-explore/mlx#4110;
`mx.clear_streams()` alone did not prevent it here). So:
- MLX work goes to one process-wide daemon thread (`shared_thread("mlx")`) that is never stopped;
  idle, it waits inside a C-level queue read that interpreter exit never wakes, so it never exits
  and those destructors never run;
- an atexit hook (which runs before the interpreter starts finalizing) waits, for a bounded
  time, until every model thread is idle in that read: a thread still finishing a job when
  finalization starts would be killed as it asks for the GIL, and abort the process.
Threads for other engines end on stop(), after `on_exit` ran on them.
"""

from __future__ import annotations

import atexit
import queue
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

_STOP = object()


class ModelThread:
    def __init__(self, name: str, on_exit: Callable[[], None] | None = None) -> None:
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._on_exit = on_exit
        self._stopped = False
        self._idle = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        _live.add(self)

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        if self._stopped:
            raise RuntimeError("model thread stopped")
        fut: Future[Any] = Future()
        self._jobs.put((fn, fut))
        return fut

    def stop(self) -> None:
        """Run on_exit on the thread after the queued jobs, then let it end."""
        if not self._stopped:
            self._stopped = True
            self._jobs.put(_STOP)

    @property
    def ident(self) -> int | None:
        return self._thread.ident

    def quiesce(self, timeout: float) -> bool:
        """Wait until the thread has finished its jobs and sits idle; False on timeout."""
        if self._stopped or not self._thread.is_alive():
            return True
        deadline = time.monotonic() + timeout
        try:
            self.submit(lambda: None).result(timeout)
        except Exception:
            return False
        while not self._idle:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        time.sleep(0.02)  # the few bytecodes between setting _idle and blocking in get()
        return True

    def _run(self) -> None:
        while True:
            self._idle = True
            job = self._jobs.get()
            self._idle = False
            if job is _STOP:
                break
            fn, fut = job
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                result = fn()
            except BaseException as e:
                fut.set_exception(e)
            else:
                fut.set_result(result)
        if self._on_exit is not None:
            try:
                self._on_exit()
            except Exception:
                pass


_live: weakref.WeakSet[ModelThread] = weakref.WeakSet()
_shared: dict[str, ModelThread] = {}
_shared_lock = threading.Lock()


def shared_thread(key: str) -> ModelThread:
    """The process-wide thread for `key`, started on first use and never stopped."""
    with _shared_lock:
        thread = _shared.get(key)
        if thread is None:
            thread = _shared[key] = ModelThread(f"{key}-model")
        return thread


@atexit.register
def _quiesce_all(timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    for thread in list(_live):
        thread.quiesce(max(0.0, deadline - time.monotonic()))
