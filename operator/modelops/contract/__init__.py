"""What the operator, the containers it starts (trainer, server) and the dev cluster agree on: names of
environment variables, labels, metrics and bins, the server's port, and the trainer's messages.

The bottom layer: it imports nothing else of ModelOps and nothing beyond the standard library and pydantic, so
the operator and the containers can both depend on it without depending on each other.
"""
