"""How many messages wait in each queue, read with the broker's own transport: `LLEN` on the
broker's Redis database, or the message files in kombu's filesystem broker folder. Read by the
queue page and by the engine's sweeper (a queue holding fewer messages than it has steps waiting
has lost some). Any other transport cannot say (None)."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from celery import Celery

from workflows.errors import ApplicationError

# Seconds to wait for the broker itself before calling it unreachable.
BROKER_TIMEOUT_S = 2.0
# kombu's Redis transport keeps each priority of a queue in its own list: "<queue>\x06\x16<n>".
REDIS_PRIORITY_SEP = "\x06\x16"
REDIS_PRIORITY_STEPS = (0, 3, 6, 9)


class BrokerUnavailable(ApplicationError):
    pass


def transport(app: Celery) -> str:
    scheme = urlsplit(app.conf.broker_url or "").scheme
    return {"rediss": "redis"}.get(scheme, scheme or "amqp")


def queue_lengths_redis(url: str, queues: list[str], *, transport_options: dict[str, Any]) -> dict[str, int]:
    """LLEN of each queue (all its priority lists) on the broker's Redis database."""
    import redis

    prefix = transport_options.get("global_keyprefix", "")
    steps = transport_options.get("priority_steps", REDIS_PRIORITY_STEPS)
    sep = transport_options.get("sep", REDIS_PRIORITY_SEP)
    client = redis.Redis.from_url(url, socket_timeout=BROKER_TIMEOUT_S, socket_connect_timeout=BROKER_TIMEOUT_S)
    try:
        with client.pipeline(transaction=False) as pipe:
            for queue in queues:
                for step in steps:
                    pipe.llen(f"{prefix}{queue}{sep}{step}" if step else f"{prefix}{queue}")
            sizes = pipe.execute()
    finally:
        client.close()
    per_queue = len(steps)
    return {queue: sum(sizes[i * per_queue : (i + 1) * per_queue]) for i, queue in enumerate(queues)}


def queue_lengths_filesystem(folder: str, queues: list[str]) -> dict[str, int]:
    """Message files in kombu's filesystem broker folder: `<ms>_<uuid>.<queue>.msg`."""
    if not os.path.isdir(folder):
        raise BrokerUnavailable(f"the broker folder {folder} does not exist")
    counts = dict.fromkeys(queues, 0)
    wanted = {f"{queue}.msg": queue for queue in queues}
    with os.scandir(folder) as entries:
        for entry in entries:
            queue = wanted.get(entry.name.partition(".")[2])
            if queue is not None:
                counts[queue] += 1
    return counts


def queue_lengths(app: Celery, queues: list[str]) -> dict[str, int | None]:
    """Messages waiting in each queue; None for each when the transport cannot say. Raises what
    the transport raises when the broker cannot be reached."""
    options = dict(app.conf.broker_transport_options or {})
    kind = transport(app)
    if kind == "redis":
        return queue_lengths_redis(app.conf.broker_url, queues, transport_options=options)
    if kind == "filesystem":
        return queue_lengths_filesystem(options.get("data_folder_in", "data_in"), queues)
    return dict.fromkeys(queues)
