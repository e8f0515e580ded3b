"""A local Kubernetes control plane without Docker, for the demo and the tests.

`toolchain` builds pinned binaries from Go modules into a cache; `pki` makes the certificates;
`cluster` starts, checks and stops the processes.
"""
