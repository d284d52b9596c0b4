"""The use cases every entry point calls (CLI, Dagster, the live service, the read API).

- ``land``: land normalized ticks in the store, quarantining what the store refuses;
- ``build``: plan (``Full | Incremental | UpToDate``) and build a partition's bars;
- ``replay``: tick files -> bars, optionally persisted into the store;
- ``export``: the canonical CSV of stored bars;
- ``parity``: judge our bars against a vendor's;
- ``drop`` / ``sources``: where a partition's ticks and reference bars come from, and the
  per-symbol setting of tick source, reference source and rule set.

Entry points stay thin: they parse their arguments, call one of these, and present the
typed result; user errors are ``core.errors.UserError``.
"""
