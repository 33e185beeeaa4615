"""The RQ worker vmotion runs: it ends tasks orphaned by a lost worker before taking work."""

import logging

from rq.worker import Worker

from .recovery import reconcile_orphaned_tasks

log = logging.getLogger(__name__)


class VmotionWorker(Worker):
    def work(self, *args, **kwargs):
        try:
            ended = reconcile_orphaned_tasks()
            if ended:
                log.info("reconciled orphaned migration tasks %s", ended)
        except Exception:
            log.exception("reconciling orphaned tasks at worker start failed")
        return super().work(*args, **kwargs)
