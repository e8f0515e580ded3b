"""Code that runs inside containers (trainer, server); depends on nothing else of the operator."""
