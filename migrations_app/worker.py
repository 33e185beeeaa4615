"""The RQ worker vmotion runs: it reconciles tasks orphaned by a lost worker before taking work."""

import logging

from rq.worker import Worker

log = logging.getLogger(__name__)


class VmotionWorker(Worker):
    def work(self, *args, **kwargs):
        from .recovery import reconcile_orphaned_tasks

        try:
            finalised = reconcile_orphaned_tasks()
            if finalised:
                log.info("reconciled orphaned migration tasks %s", finalised)
        except Exception:
            log.exception("reconciling orphaned tasks at worker start failed")
        return super().work(*args, **kwargs)
