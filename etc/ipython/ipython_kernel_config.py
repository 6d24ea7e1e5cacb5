# System-wide configuration of every participant's IPython kernel (mounted read-only at
# /etc/ipython, one of the directories IPython reads before the participant's own
# ~/.ipython): loads the workshop's extension, which reports executed cells to the
# dashboard and adds `%help` (etc/ipython/workshop_feed/).
#
# The package is loaded from this folder by its file path, so nothing is added to the
# kernel's sys.path (a participant's module of the same name is not shadowed, nor does it
# shadow ours). A failure here only costs the feed: the kernel starts regardless.
# ruff: noqa: F821  (`c` is provided by IPython when it loads this file)

import importlib.util
import sys
from pathlib import Path


def _load_workshop_feed() -> bool:
    package = Path(__file__).resolve().with_name("workshop_feed")
    spec = importlib.util.spec_from_file_location(
        "workshop_feed", package / "__init__.py", submodule_search_locations=[str(package)])
    if spec is None or spec.loader is None:
        return False
    module = importlib.util.module_from_spec(spec)
    sys.modules["workshop_feed"] = module
    try:
        spec.loader.exec_module(module)
    except Exception:
        del sys.modules["workshop_feed"]
        raise
    return True


try:
    if _load_workshop_feed():
        # append: the participant's own configured extensions stay as they are
        c.InteractiveShellApp.extensions.append("workshop_feed")
except Exception as _error:
    print(f"workshop: the execution feed is off in this kernel: {_error}", file=sys.stderr)
