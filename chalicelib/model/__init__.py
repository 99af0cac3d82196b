"""Domain data and the ports: who, what and where, no I/O."""
