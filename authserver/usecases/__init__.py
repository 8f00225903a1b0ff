"""Use cases: every change to users and credentials, whichever front door asks for it.

The management API, RFC 7591/7592 registration, the CLI and the pages only
translate their wire format into these typed calls, and the errors back. Each
use case looks up what it needs, applies the domain rules, writes, audits and
tells this process's caches — in one place. They block (database, argon2):
async callers use a worker thread.
"""
