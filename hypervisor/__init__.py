"""The one door to libvirt, owned by no app.

This package is the only code that imports `libvirt`. Everything else sees plain
dataclasses, the `DomainState` enum and `HypervisorError`, whose message an operator can
act on. Its modules, by what they serve:

- `connection`: opening connections, and a timeout on every call;
- `host`: what the inventory reads from a host (`read_host`, `baseline_cpu`);
- `cpu`: CPU models and their features, as libvirt's CPU map has them;
- `guest`: one domain's state, the calls a migration makes on it, and its next boot's CPU;
- `migration`: starting a peer-to-peer live migration in its own thread;
- `job`: libvirt's job statistics mapped once to `JobSample`;
- `sampling`: how long the inventory samples dirty rates, numbers that pages read too;
- `nonzero`: how much of a guest's RAM holds data, from a sample of its physical memory.
"""

from .errors import HypervisorError, HypervisorTimeout

__all__ = ["HypervisorError", "HypervisorTimeout"]
