"""The instructor dashboard: a Flask service started and proxied by JupyterHub.

Participants' servers post save events to it; instructors see everyone's notebooks.
"""
