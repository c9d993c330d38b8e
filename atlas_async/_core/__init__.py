"""Pure vocabulary and decisions: no I/O, no clock, no global random state."""
