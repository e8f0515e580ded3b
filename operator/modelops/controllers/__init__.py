"""Kopf handlers: thin — read the object, build the desired children, apply, write status."""
