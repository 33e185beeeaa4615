"""Setting the migration bandwidth budget of a host or of a cluster's hosts: what a host's
migration network carries each way, shared by its migrations by priority."""

from __future__ import annotations

from .models import Cluster, Host

# The most a budget can be, in MiB/s: a 400 Gbit/s link carries about 47,700.
MAX_BUDGET_MIB_S = 50_000
NO_BUDGET_WORDS = {"none", "off", "unlimited", ""}


class BudgetError(ValueError):
    pass


def parse_budget(word: str) -> int | None:
    """MiB/s, or None for no budget."""
    text = word.strip().lower()
    if text in NO_BUDGET_WORDS:
        return None
    if not text.isdigit() or not 1 <= int(text) <= MAX_BUDGET_MIB_S:
        raise BudgetError(f"A migration bandwidth budget is a whole number of MiB/s from 1 to {MAX_BUDGET_MIB_S}, or none; not {word!r}.")
    return int(text)


def set_budget(target: Host | Cluster, word: str) -> str:
    """Change the budget (recorded in the audit trail); returns what it now means."""
    target.migration_bandwidth_mib_s = parse_budget(word)
    target.save(update_fields=["migration_bandwidth_mib_s"])
    return describe(target)


def describe(target: Host | Cluster) -> str:
    budget = target.migration_bandwidth_mib_s
    if isinstance(target, Cluster):
        if budget is None:
            return f"{target.name}: no migration bandwidth budget; its hosts' own ones apply."
        return f"{target.name}: each host without its own budget shares {budget} MiB/s each way among its migrations, by priority."
    if budget is not None:
        return f"{target.name}: {budget} MiB/s each way, shared among its migrations by priority."
    inherited = target.cluster.migration_bandwidth_mib_s if target.cluster_id else None
    if inherited is not None:
        return f"{target.name}: its cluster {target.cluster.name}'s {inherited} MiB/s each way, shared among its migrations by priority."
    return f"{target.name}: no migration bandwidth budget; each migration takes what its operator allows."
