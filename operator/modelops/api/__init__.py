"""The ModelOps API: pydantic models of the custom resources, and the CRDs generated from them."""
