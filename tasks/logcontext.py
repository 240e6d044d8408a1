"""Carry the request id from the request that enqueued a task to the worker that runs it."""

from __future__ import annotations

import structlog
from taskiq import TaskiqMessage, TaskiqMiddleware

REQUEST_ID_LABEL = "request_id"

log = structlog.get_logger("bms.tasks")


class LogContextMiddleware(TaskiqMiddleware):
    """On kick, copy the bound request id into the message's labels; on run, bind it back.

    A request binds its id with structlog's contextvars (api.middleware), and the after-commit
    enqueue runs in a task copied from the request's context, so the id is there to copy.
    Each message runs in a task of its own, so what `pre_execute` binds stays with it.
    """

    def pre_send(self, message: TaskiqMessage) -> TaskiqMessage:
        request_id = structlog.contextvars.get_contextvars().get(REQUEST_ID_LABEL)
        if request_id and REQUEST_ID_LABEL not in message.labels:
            message.labels[REQUEST_ID_LABEL] = request_id
        return message

    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        request_id = message.labels.get(REQUEST_ID_LABEL)
        if request_id:
            structlog.contextvars.bind_contextvars(request_id=request_id)
        structlog.contextvars.bind_contextvars(task=message.task_name, task_id=message.task_id)
        log.debug("task started")
        return message
