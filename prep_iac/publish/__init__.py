"""The IEC side of clause III: manifests, signatures, and pushing cuts to difusores."""
