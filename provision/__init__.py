"""Laptop-side helpers for create-node.py: DigitalOcean, SSH host-key pinning, upload.

Kept as a package next to create-node.py so the script itself stays a thin
orchestration layer and every concern here can be unit-tested on its own.
"""
