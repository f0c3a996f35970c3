"""The receiver's sans-I/O core: signature, delivery parsing, the bus contract, routing, outcomes and
the flow. It imports only the standard library and itself; everything outside (AWS, Powertools, the
web framework) reaches it through the ports in :mod:`handler.core.ports`."""
