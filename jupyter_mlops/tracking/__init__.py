"""Tracking: runs and what is logged to them (``runs``), the record of every cell execution
(``capture``, ``cellnames``), what ``%%track`` finds by itself (``autolog``, ``datasets``),
and reading it back (``search``, ``compare``, ``history``); ``runner`` executes notebooks."""
