"""The pure engines: events to principals, desired state, plans, the two identity backends."""
