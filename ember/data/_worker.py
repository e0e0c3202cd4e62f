"""DataLoader worker processes: the worker loop, the pool that owns them, the in-order iterator.

Protocol. Each worker has its own index queue; all share one result queue. The main process sends
`(generation, batch_index, payload, seed)` tasks round-robin, keeping `prefetch_factor` batches
per worker in flight, and reassembles results in batch order. `generation` numbers the epochs,
so results left over from an abandoned epoch of persistent workers are recognised and dropped.
Results are pickled inside the worker: an unpicklable batch becomes an error naming the worker
instead of a silent hang in the queue's feeder thread.
"""
from __future__ import annotations

import itertools
import os
import pickle
import queue
import time
import traceback
import weakref

from ember._core.errors import EmberError
from ember.data import _fetch

_POLL_SECONDS = 1.0  # how often a blocked side checks that the other side is still alive
_JOIN_SECONDS = 5.0


class DataLoaderWorkerError(EmberError, RuntimeError):
    """A DataLoader worker failed; the message holds its id and the worker's traceback.

    When the worker raised a built-in exception type (KeyError, ValueError, ...) the error raised
    in the main process is also an instance of that type, so `except ValueError` still works.
    """

    __str__ = Exception.__str__  # KeyError would otherwise repr() the whole message

    def __init__(self, message: str, worker_id: int | None = None):
        super().__init__(message)
        self.worker_id = worker_id


_typed_errors: dict[type, type] = {}


def _worker_error(message: str, worker_id: int, original: type | None) -> DataLoaderWorkerError:
    if original is None or not issubclass(original, Exception):
        return DataLoaderWorkerError(message, worker_id)
    if original not in _typed_errors:
        try:
            _typed_errors[original] = type(original.__name__, (DataLoaderWorkerError, original),
                                           {"__module__": __name__})
        except TypeError:  # a base with its own C layout (OSError, ...) cannot be mixed in
            _typed_errors[original] = DataLoaderWorkerError
    return _typed_errors[original](message, worker_id)


class _Failure:
    """An exception caught in a worker, reduced to picklable text."""

    def __init__(self, worker_id: int, where: str, error: BaseException):
        self.worker_id = worker_id
        self.text = (f"DataLoader worker {worker_id} raised {type(error).__name__} {where}: "
                     f"{error}\n\nOriginal traceback in worker {worker_id}:\n"
                     f"{traceback.format_exc()}")
        builtin = type(error).__module__ == "builtins"
        self.error_type = type(error) if builtin else None

    def exception(self) -> DataLoaderWorkerError:
        return _worker_error(self.text, self.worker_id, self.error_type)


def _send(result_queue, message):
    result_queue.put(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))


def _worker_loop(spec, worker_id, index_queue, result_queue, done_event, parent_pid):
    seed = spec.base_seed + worker_id
    _fetch.seed_globals(seed)
    _fetch.set_worker_info(_fetch.WorkerInfo(worker_id, spec.num_workers, seed, spec.dataset))
    init_failure = None
    if spec.worker_init_fn is not None:
        try:
            spec.worker_init_fn(worker_id)
        except Exception as error:
            init_failure = _Failure(worker_id, "in worker_init_fn", error)
    stream, stream_generation = None, None
    try:
        while True:
            try:
                task = index_queue.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if os.getppid() != parent_pid:  # the main process died: don't linger
                    break
                continue
            if task is None:
                break
            if done_event.is_set():  # shutting down: skip queued work, wait for the None
                continue
            generation, batch_index, payload, batch_seed = task
            try:
                if init_failure is not None:
                    kind, value = "error", init_failure
                elif spec.is_iterable:
                    if generation != stream_generation:
                        stream, stream_generation = iter(spec.dataset), generation
                    value = _fetch.fetch_stream(spec, stream)
                    kind = "end" if value is _fetch.END_OF_STREAM else "data"
                    value = None if kind == "end" else value
                else:
                    _fetch.seed_globals(batch_seed)
                    kind, value = "data", _fetch.fetch_indices(spec, payload)
                _send(result_queue, (generation, batch_index, kind, value, worker_id))
            except Exception as error:
                where = f"while fetching batch {batch_index}"
                if payload is not None:
                    where += f" (indices {payload})"
                failure = _Failure(worker_id, where, error)
                _send(result_queue, (generation, batch_index, "error", failure, worker_id))
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group; the main one reports it
        pass
    # Exit even if the main process no longer reads: unflushed results are not needed anymore.
    result_queue.cancel_join_thread()
    result_queue.close()


def _shutdown(processes, index_queues, result_queue, done_event):
    done_event.set()
    for index_queue in index_queues:
        try:
            index_queue.put(None)
        except (OSError, ValueError):  # queue already closed
            pass
    deadline = time.monotonic() + _JOIN_SECONDS
    for process in processes:
        process.join(timeout=max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():  # stuck in user code: don't let it outlive the loader
            process.terminate()
            process.join(timeout=_JOIN_SECONDS)
    for index_queue in index_queues:
        index_queue.cancel_join_thread()
        index_queue.close()
    result_queue.cancel_join_thread()
    result_queue.close()


class WorkerPool:
    """A loader's worker processes and queues; shut down by `shutdown()` or when collected."""

    def __init__(self, spec, context):
        self.result_queue = context.Queue()
        self.index_queues, self.processes = [], []
        done_event = context.Event()
        for worker_id in range(spec.num_workers):
            index_queue = context.Queue()
            process = context.Process(target=_worker_loop, daemon=True,
                                      args=(spec, worker_id, index_queue, self.result_queue,
                                            done_event, os.getpid()))
            process.start()
            self.index_queues.append(index_queue)
            self.processes.append(process)
        # A finalizer, not __del__: it runs on collection and at interpreter exit, and holds no
        # reference to the pool itself.
        self._finalizer = weakref.finalize(self, _shutdown, self.processes, self.index_queues,
                                           self.result_queue, done_event)

    @property
    def alive(self) -> bool:
        return self._finalizer.alive

    def shutdown(self):
        self._finalizer()

    def dead_worker(self) -> str | None:
        for worker_id, process in enumerate(self.processes):
            if not process.is_alive():
                return f"DataLoader worker {worker_id} exited unexpectedly " \
                       f"(exit code {process.exitcode})"
        return None


class MultiProcessIterator:
    """Yields one epoch's batches in order from a WorkerPool."""

    def __init__(self, pool, spec, batches, first_batch, generation, base_seed, prefetch_factor,
                 timeout, keep_pool):
        self._pool, self._spec, self._batches = pool, spec, batches
        self._generation, self._base_seed = generation, base_seed
        self._timeout, self._keep_pool = timeout, keep_pool
        self._in_flight_limit = prefetch_factor * spec.num_workers
        self._next_send = self._next_yield = first_batch
        self._in_flight: dict[int, int] = {}  # batch index -> worker id
        self._arrived: dict[int, tuple] = {}  # batch index -> (kind, value, worker id)
        self._active = [True] * spec.num_workers
        self._turn = itertools.cycle(range(spec.num_workers))
        self._sampler_done = False
        self.finished = False
        self._dispatch()

    def __iter__(self):
        return self

    def _next_worker(self) -> int | None:
        for _ in range(len(self._active)):
            worker_id = next(self._turn)
            if self._active[worker_id]:
                return worker_id
        return None

    def _dispatch(self):
        while len(self._in_flight) < self._in_flight_limit and not self._sampler_done:
            worker_id = self._next_worker()
            if worker_id is None:
                return
            payload, seed = None, None
            if not self._spec.is_iterable:
                payload = next(self._batches, None)
                if payload is None:
                    self._sampler_done = True
                    return
                seed = _fetch.batch_seed(self._base_seed, self._next_send)
            self._pool.index_queues[worker_id].put(
                (self._generation, self._next_send, payload, seed))
            self._in_flight[self._next_send] = worker_id
            self._next_send += 1

    def _fail(self, error: Exception):
        self.finished = True
        self._pool.shutdown()
        raise error

    def _receive(self):
        started = time.monotonic()
        wait = min(self._timeout, _POLL_SECONDS) if self._timeout > 0 else _POLL_SECONDS
        while True:
            try:
                raw = self._pool.result_queue.get(timeout=wait)
            except queue.Empty:
                dead = self._pool.dead_worker()
                if dead is not None:
                    self._fail(DataLoaderWorkerError(dead))
                waited = time.monotonic() - started
                if self._timeout > 0 and waited >= self._timeout:
                    worker_id = self._in_flight[self._next_yield]
                    self._fail(EmberError(
                        f"DataLoader timed out after {waited:.1f} s waiting for batch "
                        f"{self._next_yield} from worker {worker_id} (timeout={self._timeout}); "
                        f"a slow __getitem__ needs a larger timeout"))
                continue
            generation, batch_index, kind, value, worker_id = pickle.loads(raw)
            if generation == self._generation:
                self._arrived[batch_index] = (kind, value, worker_id)
                return

    def __next__(self):
        while not self.finished:
            index = self._next_yield
            if index not in self._in_flight:
                self._finish()
                break
            if index not in self._arrived:
                self._receive()
                continue
            kind, value, worker_id = self._arrived.pop(index)
            del self._in_flight[index]
            self._next_yield += 1
            if kind == "error":
                self._fail(value.exception())
            if kind == "end":  # this worker's share of an iterable dataset is used up
                self._active[worker_id] = False
            self._dispatch()
            if kind == "data":
                return value
        raise StopIteration

    def _finish(self):
        self.finished = True
        if not self._keep_pool:
            self._pool.shutdown()
