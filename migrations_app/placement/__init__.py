"""Where a VM may go: the pure ranking (`rules`), destinations for several VMs at once (`plan`) and the inventory's facts the migration assistant ranks (`store`)."""
