"""The domain: settings, errors, periods, the session, and the packages below; imports nothing else of ours.

Submodules are imported where needed (``from hive_core.store.events import ApiCall``); this package
imports nothing at start-up so that ``hive --help`` stays fast.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
