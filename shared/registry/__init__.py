"""The registry domain: every change to repositories, blobs, manifests and tags goes through here.

Handlers (/v2, /api/v1), the replicator and gc call these operations; none of them writes SQL. Each
changing operation takes a `Change` (change.py): it runs in the caller's transaction and writes its
own events to the outbox in that transaction; the events are published after commit.

    change.py        Registry (one per process) and Change (one transaction + its events)
    repositories.py  names, lookups, create (API or first push), state, visibility, delete
    uploads.py       upload sessions and their chunks
    blobs.py         commit a pushed blob, place a replicated copy, link/unlink, digest locks
    manifests.py     put (with tags and labels) and delete manifests, referrers
    tags.py          put (create/move/restore), delete, expiry, time machine, history
    lookups.py       which manifest a tag or digest names, kept per gateway process under a lease
    replication.py   target locations, missing copies, failures, location tools
    collection.py    what gc reads and deletes
    quota.py         exact usage per namespace and repository, kept by the operations above; limits

Events and their subjects: shared/messages.py and shared/contract.py. Storage keys:
shared/storage/paths.py.
"""
from .change import Change, QuotaPolicy, Registry, actor_for

__all__ = ["Change", "QuotaPolicy", "Registry", "actor_for"]
