"""Imported once by the forkserver the render processes are forked from (renderpool.py):
nbconvert imported, the exporter built and its templates compiled, so that every render
process, the first and every replacement of a killed one, starts warm."""

from __future__ import annotations

import logging

from .convert import convert
from .limits import Limits

_SAMPLE = ('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": ['
           '{"cell_type": "markdown", "metadata": {}, "source": "# warm"}, '
           '{"cell_type": "code", "metadata": {}, "execution_count": 1, "source": "1", '
           '"outputs": [{"output_type": "stream", "name": "stdout", "text": "1"}]}]}')

try:
    convert(_SAMPLE, max_cells=1, max_lines=1, limits=Limits())
except Exception:  # a failure here must not take the forkserver down: render cold then
    logging.getLogger("dashboard.renderpool").exception("warming up the renderer failed")
