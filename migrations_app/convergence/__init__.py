"""How a live migration converges, as data and pure functions: the policy that steers it, the forecast replayed from numbers, progress and silence. No Django, no libvirt."""
