"""The sans-I/O core: signature, delivery parsing, the bus contract and the archive's layout,
routing, outcomes, settings, the time budget, the receiver's flow and the redelivery decisions.
It imports only the standard library and itself (tests/test_layout.py checks); everything outside
(AWS, GitHub's API, Powertools, the web framework) reaches it through Protocol ports
(:mod:`handler.core.ports`, and ``DeliveriesApi``/``StateStore`` in :mod:`handler.core.redelivery`)."""
