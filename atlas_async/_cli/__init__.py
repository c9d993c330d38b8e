"""The command line's parts (the face is atlas_async.cli)."""
