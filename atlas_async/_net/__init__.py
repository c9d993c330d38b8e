"""HTTP: the session, one attempt, transports, the gate, retries, the real clock."""
