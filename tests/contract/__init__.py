"""
The wire contract, one literal body at a time.

`literals` holds the bodies: the conformance fixtures F1-F19 and answers built
from the wire facts W1-W18 (docs/wire.md, "Sample answers" and "Wire forms the
SDK reads"). Each side of the contract is tested against these literals, never
against the other side: the SDK's half reads them through its public parse
functions and a respx-mocked client; the emulator's half (added beside it)
must emit them.
"""
