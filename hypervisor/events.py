"""libvirt's domain events in this process: one event loop, started once, before the
connection whose events are wanted is opened (libvirt only delivers events on connections
opened after an event loop was registered)."""

from __future__ import annotations

import logging
import threading

import libvirt

log = logging.getLogger(__name__)

_lock = threading.Lock()
_running = False


def event_loop_running() -> bool:
    """Start libvirt's default event loop in a thread of its own if none runs yet; returns
    whether one runs."""
    global _running
    with _lock:
        if not _running:
            try:
                libvirt.virEventRegisterDefaultImpl()
            except libvirt.libvirtError as error:
                log.warning("libvirt's event loop could not start: %s", error)
                return False
            threading.Thread(target=_run_forever, name="libvirt-events", daemon=True).start()
            _running = True
        return True


def _run_forever() -> None:
    while True:
        try:
            libvirt.virEventRunDefaultImpl()
        except libvirt.libvirtError as error:  # one failed dispatch must not end event delivery
            log.warning("libvirt's event loop: %s", error)
