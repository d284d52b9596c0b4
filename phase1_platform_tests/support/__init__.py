"""Helpers shared by the tests: a local threaded HTTP server for the vendor fakes,
a fake clock and a guarded asyncio runner."""
