"""The commands (``kd-distill``, ``kd-label``, ``kd-train-teacher``, ``kd-serve-teacher``;
``bin/*.py`` in the repository): each parses flags and calls the library."""
