"""Counters and histograms through the OpenTelemetry metrics API, or nothing at all.

The library records; the application decides where numbers go. That is the same
split as logging (``log.py`` never configures structlog): we call only the
OpenTelemetry *API* (``opentelemetry-api``, the ``metrics`` extra), and the
application installs an SDK ``MeterProvider`` with the exporter it wants
(Prometheus, OTLP, ...). Without the API package, or without an SDK, every call is
a method call on an object that does nothing.

Callers hold a :class:`Metrics` built once at startup (:func:`create_metrics`) and
call its methods on the request path; those methods never import, allocate
instruments or look anything up by name. Label values are drawn from small fixed
sets (endpoint names the code chooses, stable ``error_kind`` codes, HTTP status
codes), never from requests, so the series count stays bounded.

Instrument names and labels are listed in ``docs/metrics.md``; a test keeps the two
in step (:data:`INSTRUMENTS`).
"""

from __future__ import annotations

from typing import Any, Final

from sanic_edge_auth._version import __version__

__all__ = ["INSTRUMENTS", "METER_NAME", "NOOP_METRICS", "Metrics", "create_metrics"]

METER_NAME: Final = "sanic_edge_auth"

#: Every instrument: name -> (kind, unit, labels, description). docs/metrics.md lists
#: the same table.
INSTRUMENTS: Final[dict[str, tuple[str, str, tuple[str, ...], str]]] = {
    "edge_auth.auth.decisions": (
        "counter",
        "{decision}",
        ("result", "error_kind"),
        "Bearer/session checks on protected routes, by result (granted, denied) and why.",
    ),
    "edge_auth.idp.call.duration": (
        "histogram",
        "s",
        ("endpoint", "status"),
        "Calls to the identity provider: one observation per call, with its latency.",
    ),
    "edge_auth.jwks.refreshes": (
        "counter",
        "{refresh}",
        ("outcome",),
        "Fetches of the signing keys (JWKS), by outcome.",
    ),
    "edge_auth.token_cache.lookups": (
        "counter",
        "{lookup}",
        ("result",),
        "Verified-token cache lookups, by result (hit, miss).",
    ),
    "edge_auth.refresh.coalesced": (
        "counter",
        "{request}",
        (),
        "Refresh requests that joined a refresh already in flight instead of calling the IdP.",
    ),
    "edge_auth.downstream.token_requests": (
        "counter",
        "{request}",
        ("target", "grant", "outcome"),
        "Token requests for downstream APIs, by target, grant and outcome (ok, or the error_kind).",
    ),
    "edge_auth.downstream.cache_hits": (
        "counter",
        "{hit}",
        ("target", "grant"),
        "Downstream tokens served from the cache, by target and grant.",
    ),
    "edge_auth.introspection.lookups": (
        "counter",
        "{lookup}",
        ("result",),
        "Introspected bearer tokens, by where the answer came from (local, shared, called).",
    ),
    "edge_auth.store.errors": (
        "counter",
        "{error}",
        ("operation",),
        "Failed calls to the shared-state store (memory, Redis), by operation.",
    ),
}

_NO_ERROR: Final = "none"


class Metrics:
    """The facade the library records through. This base class records nothing.

    Every method takes only bounded values (see the module docstring). ``status``
    of an IdP call is the HTTP status as text (``"200"``), or, when no answer
    arrived, the ``error_kind`` of the failure (``"upstream_timeout"``,
    ``"upstream_unavailable"``).
    """

    __slots__ = ()

    #: ``True`` when the numbers go somewhere (an OpenTelemetry meter is attached).
    enabled: bool = False

    def auth_decision(self, result: str, error_kind: str | None = None) -> None:
        """A protected route granted (``"granted"``) or refused (``"denied"``) a request."""

    def idp_call(self, endpoint: str, status: str, seconds: float) -> None:
        """One call to the identity provider ended (answered or not) after ``seconds``."""

    def jwks_refresh(self, outcome: str) -> None:
        """A JWKS fetch ended: ``"ok"``, ``"failed"`` or ``"rate_limited"`` (skipped)."""

    def token_cache(self, hit: bool) -> None:
        """A verified-token cache lookup."""

    def refresh_coalesced(self) -> None:
        """A refresh joined one already in flight for the same refresh token."""

    def store_error(self, operation: str) -> None:
        """A store operation (``get``, ``set``, ``delete``, ``lease``, ...) failed."""

    def downstream_request(self, target: str, grant: str, outcome: str) -> None:
        """A token request for a downstream target ended (``ok``, or the error_kind).
        ``target`` is a name from the config, so the label set stays bounded."""

    def downstream_cache_hit(self, target: str, grant: str) -> None:
        """A downstream token was served from the cache."""

    def introspection(self, result: str) -> None:
        """An introspected token's answer came from this process's cache (``"local"``),
        from the store or another caller's call (``"shared"``), or from a call this
        process made to the provider (``"called"``)."""


#: The shared do-nothing instance: it has no state, so one serves every app.
NOOP_METRICS: Final = Metrics()


class _OpenTelemetryMetrics(Metrics):
    """Records through instruments created once from an OpenTelemetry meter."""

    __slots__ = (
        "_coalesced",
        "_decisions",
        "_downstream_hits",
        "_downstream_requests",
        "_idp",
        "_introspection",
        "_jwks",
        "_store",
        "_token_cache",
        "_token_hit",
        "_token_miss",
    )

    enabled = True

    def __init__(self, meter: Any) -> None:
        def make(name: str) -> Any:
            kind, unit, _, description = INSTRUMENTS[name]
            factory = meter.create_histogram if kind == "histogram" else meter.create_counter
            return factory(name, unit=unit, description=description)

        self._decisions = make("edge_auth.auth.decisions")
        self._idp = make("edge_auth.idp.call.duration")
        self._jwks = make("edge_auth.jwks.refreshes")
        self._token_cache = make("edge_auth.token_cache.lookups")
        self._coalesced = make("edge_auth.refresh.coalesced")
        self._store = make("edge_auth.store.errors")
        self._downstream_requests = make("edge_auth.downstream.token_requests")
        self._downstream_hits = make("edge_auth.downstream.cache_hits")
        self._introspection = make("edge_auth.introspection.lookups")
        # The two token-cache label sets are built once: that call is the hottest.
        self._token_hit = {"result": "hit"}
        self._token_miss = {"result": "miss"}

    def auth_decision(self, result: str, error_kind: str | None = None) -> None:
        self._decisions.add(1, {"result": result, "error_kind": error_kind or _NO_ERROR})

    def idp_call(self, endpoint: str, status: str, seconds: float) -> None:
        self._idp.record(seconds, {"endpoint": endpoint, "status": status})

    def jwks_refresh(self, outcome: str) -> None:
        self._jwks.add(1, {"outcome": outcome})

    def token_cache(self, hit: bool) -> None:
        self._token_cache.add(1, self._token_hit if hit else self._token_miss)

    def refresh_coalesced(self) -> None:
        self._coalesced.add(1)

    def store_error(self, operation: str) -> None:
        self._store.add(1, {"operation": operation})

    def downstream_request(self, target: str, grant: str, outcome: str) -> None:
        self._downstream_requests.add(1, {"target": target, "grant": grant, "outcome": outcome})

    def downstream_cache_hit(self, target: str, grant: str) -> None:
        self._downstream_hits.add(1, {"target": target, "grant": grant})

    def introspection(self, result: str) -> None:
        self._introspection.add(1, {"result": result})


def create_metrics(meter_provider: Any = None) -> Metrics:
    """The metrics facade for one app, built at startup.

    ``meter_provider`` is an OpenTelemetry ``MeterProvider``; ``None`` uses the
    global one (``opentelemetry.metrics.set_meter_provider``), which forwards to
    whatever SDK the application installs, even later. Without the
    ``opentelemetry-api`` package this returns :data:`NOOP_METRICS`.
    """
    try:
        from opentelemetry import metrics as otel_metrics
    except ImportError:
        return NOOP_METRICS

    if meter_provider is None:
        meter = otel_metrics.get_meter(METER_NAME, __version__)
    else:
        meter = meter_provider.get_meter(METER_NAME, __version__)
    return _OpenTelemetryMetrics(meter)
