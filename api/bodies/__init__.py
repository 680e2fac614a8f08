"""What the hub's answers say: domain values and stored rows rendered as JSON bodies.

The domain answers with frozen values and storage rows; this package is the one place that
turns them into the bodies of CONTRACT §3–§8 (and the response models in
``hub.contract.responses`` describe them for OpenAPI).
"""
