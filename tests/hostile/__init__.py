"""Against a hostile server: what the SDK holds when nothing on the wire is trusted."""
