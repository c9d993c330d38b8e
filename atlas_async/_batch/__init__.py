"""The batch engine: driver, journal, records, request types and input."""
