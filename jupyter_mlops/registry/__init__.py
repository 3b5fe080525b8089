"""The model registry: versions and aliases (``versions``), the replay that rebuilds a
version from the cells that made it (``replay``) and exports (``export``). The public names
are exported once, by ``jupyter_mlops`` itself."""
