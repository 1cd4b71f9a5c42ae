"""Test support for the processors: a whole deployment in one event loop (``deployment``)
and local stand-ins for the real HTTP services (``standin``)."""
