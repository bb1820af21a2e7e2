"""The ``yart`` command: the notebook's engine, store and settings in a terminal."""
