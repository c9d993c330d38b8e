"""The command line's parts (the face is atlas_async.cli), and its exit codes."""

EXIT_OK = 0  # everything succeeded
EXIT_FAILED = 1  # some item (or the one request) failed
EXIT_USAGE = 2  # bad option, file, folder, journal, no key, a missing extra
EXIT_INTERRUPTED = 130  # Ctrl-C, the shell's convention (128 + SIGINT)
EXIT_BROKEN_PIPE = 141  # stdout closed by its reader (128 + SIGPIPE)
