"""What an auditor asks of a model: its signature (is this the approved file), its provenance (how it was made)
and its card (what it is for, how good it is). Pure functions and the model-signing library; imports only the
contract, so the trainer, the server, the operator and the CLI share one definition."""
