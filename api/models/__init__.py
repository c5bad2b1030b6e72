"""Request and response models of the HTTP API (pydantic), one module per resource.

Every route declares ``response_model`` with one of these, and every request field carries a
``description`` and an example, so ``/openapi.json`` documents the whole contract.
"""
