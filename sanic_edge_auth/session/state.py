"""What a browser session holds, and its JSON form.

A session is immutable, all the way down (claims and custom data are frozen like
verified claims): a change (a refresh, a touch, custom data from a hook) makes a new
:class:`SessionState`, so one cached state shared by concurrent requests with the
same cookie is never changed under another request's feet.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from sanic_edge_auth.frozen import freeze_claims
from sanic_edge_auth.oidc.jws import payload_of_kept_token

__all__ = ["SessionState"]

FORMAT_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class SessionState:
    """One signed-in browser: who, the tokens kept for it, and its clock.

    ``id`` is random and new at every login (no session fixation); it names the
    session in the store and in revocations. ``idp_sid`` is the IdP's session id
    (the ID token's ``sid``), which back-channel logout names.
    """

    id: str
    subject: str
    claims: Mapping[str, Any]
    scopes: tuple[str, ...]
    access_token: str
    created_at: float
    last_seen: float
    idp_sid: str | None = None
    refresh_token: str | None = None
    id_token: str | None = None
    access_expires_at: float | None = None
    data: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __repr__(self) -> str:
        # Tokens never reach a log line through a repr.
        return f"SessionState(subject={self.subject!r}, created_at={self.created_at:.0f})"

    def to_json(self) -> dict[str, Any]:
        """The sealed form. The claims are left out when they are the kept ID token's
        payload (as the shipped adapters verify them): writing both would spend
        ~500 bytes of a ~4 KB cookie on a copy. :meth:`from_json` reads them back
        from the token."""
        sealed = {
            "v": FORMAT_VERSION,
            "id": self.id,
            "sub": self.subject,
            "scopes": list(self.scopes),
            "at": self.access_token,
            "created": self.created_at,
            "seen": self.last_seen,
            "sid": self.idp_sid,
            "rt": self.refresh_token,
            "it": self.id_token,
            "exp": self.access_expires_at,
            "data": dict(self.data),
        }
        if self.id_token is None or not self._claims_are_id_token_payload():
            sealed["claims"] = dict(self.claims)
        return sealed

    def _claims_are_id_token_payload(self) -> bool:
        # An adapter may hand back claims other than the token's (enriched, say):
        # then they are kept as they are. Checked at each write, which is rare.
        try:
            payload = payload_of_kept_token(self.id_token or "")
            # As JSON, not ==: True == 1 == 1.0 in Python, not once read back.
            return _canonical(payload) == _canonical(self.claims)
        except (ValueError, TypeError):
            return False

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> SessionState:
        """The state of a sealed session; ``ValueError`` if it is not one of ours."""
        if raw.get("v") != FORMAT_VERSION:
            raise ValueError("unknown session format")
        try:
            id_token = _optional_text(raw.get("it"))
            claims = raw.get("claims")
            if claims is None:
                if id_token is None:
                    raise KeyError("claims")
                # Verified when the login (or a refresh) stored it, sealed ever since.
                try:
                    claims = payload_of_kept_token(id_token)
                except ValueError as exc:
                    raise ValueError("malformed session: its ID token is unreadable") from exc
            state = cls(
                id=_text(raw["id"]),
                subject=_text(raw["sub"]),
                claims=freeze_claims(dict(claims)),
                scopes=tuple(_text(scope) for scope in raw["scopes"]),
                access_token=_text(raw["at"]),
                created_at=float(raw["created"]),
                last_seen=float(raw["seen"]),
                idp_sid=_optional_text(raw.get("sid")),
                refresh_token=_optional_text(raw.get("rt")),
                id_token=id_token,
                access_expires_at=None if raw.get("exp") is None else float(raw["exp"]),
                data=freeze_claims(dict(raw.get("data") or {})),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError("malformed session") from exc
        return state


def _canonical(claims: Mapping[str, Any]) -> str:
    return json.dumps(dict(claims), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)
