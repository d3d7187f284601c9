"""The store keys of sessions: one place that names them, with or without hash tags.

Every session request reads its revocation marks (and, for ``store: "server"``, its
record) in one ``get_many``. On a single Redis, or in memory, that is one ``MGET``
whatever the keys are called. On a Redis Cluster a multi-key read costs one ``MGET``
per hash slot, so the keys one request reads must share a slot: Redis hashes only
the part of a key between its first ``{`` and the next ``}`` (the hash tag, Redis
Cluster specification, "Hash tags"). The keys of a session are therefore tagged by
its user, ``{`` + a short digest of ``sub`` + ``}``:

- ``revoked:session:{T}<digest(id)>``: the session's own logout mark;
- ``revoked:sub:{T}<digest(sub)>``: "every session of the user before this time";
- ``revoked:sid:{T}<digest(sid)>``: "every session of this IdP session before this time";
- ``session:{T}<digest(id)>``: the server session's record.

The user is the one tag all four can share: the ``sub`` mark is per user, the others
are per session, and a user's sessions all belong to that user. The family stays the
first word of the key (``revoked:`` / ``session:``), so anything that recognises a
family by its prefix still does.

A back-channel logout may name only the IdP's ``sid`` (OpenID Connect Back-Channel
Logout 1.0, 2.4), and a ``sid`` says nothing of its user. A login therefore records
``sid:<digest(sid)>`` -> ``T`` for as long as a session may live, and such a logout
writes its mark under the tag it finds there (see
:meth:`~sanic_edge_auth.session.manager.SessionManager.revoke_matching` for what it
does when there is none).

Without hash tags (a single Redis, Sentinel, memory) the names are exactly the
untagged ones they always were, so no deployment has keys to migrate.
"""

from __future__ import annotations

import hashlib
from typing import Final

from sanic_edge_auth.session.index import session_handle

__all__ = ["SessionKeys"]

#: Hex digits of the user's digest in a tag: enough to spread users over the 16384
#: slots evenly; two users sharing a tag only share a slot.
_TAG_DIGITS: Final = 12

_digest = session_handle


class SessionKeys:
    """Names the store keys of sessions; tagged (Redis Cluster) or plain.

    Built once per app from what the store says (``Store.hash_tags``); the per-request
    path only uses the tuples of keys cached with each cookie.
    """

    __slots__ = ("tagged",)

    def __init__(self, *, tagged: bool) -> None:
        self.tagged = tagged

    def tag(self, sub: str) -> str:
        """The hash tag of ``sub``'s keys (``""`` when keys are not tagged)."""
        if not self.tagged:
            return ""
        return "{" + hashlib.sha256(sub.encode("utf-8")).hexdigest()[:_TAG_DIGITS] + "}"

    # The ``*_at`` forms take a tag already worked out (one hash per request, not four).

    def record_at(self, tag: str, handle: str) -> str:
        return f"session:{tag}{handle}"

    def revoked_session_at(self, tag: str, handle: str) -> str:
        return f"revoked:session:{tag}{handle}"

    def record(self, session_id: str, sub: str) -> str:
        """The key of a server session's record."""
        return self.record_at(self.tag(sub), _digest(session_id))

    def revoked_session(self, session_id: str, sub: str) -> str:
        """The key of one session's logout mark."""
        return self.revoked_session_at(self.tag(sub), _digest(session_id))

    def revoked_sub(self, sub: str) -> str:
        """The key of a user's "every session before this time" mark."""
        return f"revoked:sub:{self.tag(sub)}{_digest(sub)}"

    def revoked_sid(self, sid: str, tag: str) -> str:
        """The key of an IdP session's mark, under the tag of its user."""
        return f"revoked:sid:{tag}{_digest(sid)}"

    def sid_user(self, sid: str) -> str:
        """The key recording which user's tag an IdP session's mark goes under
        (written only when keys are tagged)."""
        return f"sid:{_digest(sid)}"

    def revocation_keys(self, session_id: str, sub: str, sid: str | None) -> tuple[str, ...]:
        """The keys every request of a session checks: its own mark, its user's, then
        (when it has one) its IdP session's. Computed once per cookie value and cached
        with it: a SHA-256 per key per request would cost more than the lookup."""
        tag = self.tag(sub)
        keys = (
            self.revoked_session_at(tag, _digest(session_id)),
            f"revoked:sub:{tag}{_digest(sub)}",
        )
        return keys if sid is None else (*keys, self.revoked_sid(sid, tag))
