"""Pre-flight checks: the pure rules (`rules`), their report (`report`), the inventory's facts they judge (`store`) and the one check a worker makes through libvirt (`live`)."""
