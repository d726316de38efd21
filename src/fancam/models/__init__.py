"""Models: the registry (the one owner of every model name, digest and licence) and verified downloads."""
