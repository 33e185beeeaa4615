"""A cluster's choice about the images a move's disk copies leave behind: removed by vmotion
once the VM runs from its copies (the default), or kept for an administrator who wants to
remove them by hand."""

from __future__ import annotations

from .models import Cluster

_WORDS = {"keep": True, "remove": False}


class DiskImagesSettingError(Exception):
    """A value the setting does not take; the message says which it does."""


def describe(cluster: Cluster) -> str:
    if cluster.keep_moved_disk_images:
        return f"{cluster.name}: the images a move's disk copies leave are kept; remove them by hand once sure (each task's timeline lists them)."
    return f"{cluster.name}: the images a move's disk copies leave are removed once the VM runs from its copies."


def set_keep_moved_disk_images(cluster: Cluster, word: str) -> str:
    """Change the setting (recorded in the audit trail); returns what it now means."""
    keep = _WORDS.get(word.strip().lower())
    if keep is None:
        raise DiskImagesSettingError(f"The images a move leaves are either kept or removed: keep or remove, not {word!r}.")
    cluster.keep_moved_disk_images = keep
    cluster.save(update_fields=["keep_moved_disk_images"])
    return describe(cluster)
