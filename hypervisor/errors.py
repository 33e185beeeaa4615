class HypervisorError(Exception):
    """libvirt failed; the message says what an operator can do about it."""


class HypervisorTimeout(HypervisorError):
    """A libvirt call did not return in time: the host may have stopped answering."""
