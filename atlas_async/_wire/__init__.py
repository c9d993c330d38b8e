"""The wire: answers decoded once, parsed into the SDK's values."""
