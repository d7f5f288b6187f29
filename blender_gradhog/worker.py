"""Heavy work off Blender's main thread: a :class:`Worker` thread, and the modal machinery
(:class:`BackgroundOperator`) that pumps its progress into the interface and cancels it on Esc.

The worker never touches ``bpy``; Blender data is gathered before it starts and written after it
finishes, both on the main thread.
"""
from __future__ import annotations

import threading
import traceback

from .errors import AlignCancelled, AlignError


class Worker:
    """Runs ``work(callback)`` on a thread; the main thread polls ``progress``/``message``/``done``.

    ``work`` must not touch ``bpy``. ``callback(progress, message)`` returns False once
    :meth:`cancel` was called, which the backends turn into their ``Cancelled`` exception.
    """

    def __init__(self, work, name: str = "gradhog-worker"):
        self.progress = 0.0
        self.message = "starting"
        self.result = None
        self.error: AlignError | None = None
        self._work = work
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def cancel(self) -> None:
        """Ask the worker to stop at its next progress report."""
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def _report(self, progress: float, message: str) -> bool:
        self.progress, self.message = float(progress), str(message)
        return not self._cancel.is_set()

    def _run(self) -> None:  # worker thread: torch only, never bpy
        try:
            self.result = self._work(self._report)
        except AlignError as error:
            self.error = error
        except Exception as error:
            if self._cancel.is_set() and "Cancelled" in type(error).__name__:
                self.error = AlignCancelled("cancelled")
                return
            traceback.print_exc()  # a bug: the traceback for the console, one line for the user
            self.error = AlignError(f"failed: {type(error).__name__}: {error}")


class BackgroundOperator:
    """Mixin for operators whose heavy part runs on a :class:`Worker`: a timer pumps its progress
    into the progress bar and the header; Esc or right-click cancels; ``finish`` runs on the main
    thread with the result. Under ``bpy.app.background`` callers run synchronously instead."""

    header_text = "Working… Esc to cancel"
    _worker: Worker | None = None
    _timer = None
    _area = None

    def start_worker(self, context, worker: Worker):
        self._begin_modal(context)
        self._worker = worker
        worker.start()
        return {'RUNNING_MODAL'}

    def _begin_modal(self, context) -> None:
        window_manager = context.window_manager
        self._timer = window_manager.event_timer_add(0.1, window=context.window)
        window_manager.progress_begin(0, 100)
        self._area = context.area
        if self._area is not None:
            self._area.header_text_set(self.header_text)
        if context.workspace is not None:
            context.workspace.status_text_set(self.header_text)
        window_manager.modal_handler_add(self)

    def modal(self, context, event):
        worker = self._worker
        if event.type in {'ESC', 'RIGHTMOUSE'} and event.value == 'PRESS':
            worker.cancel()
            worker.wait(timeout=30.0)
            self._cleanup(context)
            self.report({'WARNING'}, f"{self.bl_label} cancelled: nothing was changed")
            return {'CANCELLED'}
        if event.type != 'TIMER':
            return {'PASS_THROUGH'}
        context.window_manager.progress_update(int(100 * min(max(worker.progress, 0.0), 1.0)))
        if self._area is not None:
            self._area.header_text_set(f"{self.header_text} — {worker.message} ({100 * worker.progress:.0f} %)")
        if not worker.done:
            return {'RUNNING_MODAL'}
        self._cleanup(context)
        if worker.error is not None:
            self.report({'ERROR'}, sentence(str(worker.error)))
            return {'CANCELLED'}
        return self.finish(context, worker)

    def cancel(self, context):
        """Blender cancels the operator (window closed, file loaded): stop the worker, change nothing."""
        if self._worker is not None:
            self._worker.cancel()
            self._worker.wait(timeout=30.0)
        self._cleanup(context)

    def _cleanup(self, context) -> None:
        window_manager = context.window_manager
        if self._timer is not None:
            window_manager.event_timer_remove(self._timer)
            self._timer = None
            window_manager.progress_end()
        if self._area is not None:
            self._area.header_text_set(None)
            self._area = None
        if context.workspace is not None:
            context.workspace.status_text_set(None)

    def finish(self, context, worker: Worker):
        raise NotImplementedError


def sentence(message: str) -> str:
    """A report line as Blender writes them: first letter upper case."""
    return message[:1].upper() + message[1:]
