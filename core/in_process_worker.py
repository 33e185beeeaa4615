"""An RQ worker that runs each job in its own process instead of forking a work horse.

A fork per job costs more than many jobs do (an inventory sync takes about 10 ms of CPU),
and each horse starts cold: its first queries and libvirt connection cost tens of
milliseconds that a warm process does not pay again. What the horse's exit used to reset
is reset here: the database connection (closed when broken or older than CONN_MAX_AGE, as
Django does between requests), and libvirt calls that outlived their time limit, whose
threads stay blocked on a host that stopped answering, each with its socket. Past
`abandoned_calls_limit` the worker stops after its job and its supervisor starts a clean one.

Every Redis command of the worker waits out a Redis outage of up to REDIS_OUTAGE_TOLERANCE
(core.redis_outage): RQ itself survives one only while it waits for a job.
"""

import logging
import threading

from django.conf import settings
from django.db import close_old_connections
from rq.worker import SimpleWorker

from core.redis_outage import ride_out_outages

log = logging.getLogger(__name__)


class InProcessWorker(SimpleWorker):
    # A call to a powered-off host gives up by itself once TCP stops retrying (about two
    # minutes), so a few such hosts stay well below it; a libvirtd that accepts and never
    # answers holds its call for good.
    abandoned_calls_limit = 100

    def __init__(self, queues, *args, connection=None, **kwargs):
        # Before RQ's own __init__, which already names the worker in Redis.
        listed = queues if isinstance(queues, list | tuple) else [queues]
        clients = [connection, *(getattr(queue, "connection", None) for queue in listed)]
        for client in {id(client): client for client in clients if client is not None}.values():
            ride_out_outages(client, settings.REDIS_OUTAGE_TOLERANCE_SECONDS)
        super().__init__(queues, *args, connection=connection, **kwargs)

    def execute_job(self, job, queue):
        close_old_connections()
        try:
            return super().execute_job(job, queue)
        finally:
            close_old_connections()
            abandoned = abandoned_libvirt_calls()
            if abandoned > self.abandoned_calls_limit:
                log.warning("%d libvirt calls never returned: this worker stops for a clean one to take over", abandoned)
                self._stop_requested = True


def abandoned_libvirt_calls() -> int:
    # hypervisor.connection makes each call in a thread of this name and waits for it for a
    # time limit; between jobs, any such thread still alive is a call that never returned.
    return sum(1 for thread in threading.enumerate() if thread.name.startswith("libvirt-call"))
