"""Session cookies: attributes, chunking under the per-cookie limit, stale deletion."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from sanic.response import HTTPResponse, empty

from sanic_edge_auth import Secret
from sanic_edge_auth.session.codec import SessionCodec, SessionCookieInvalid
from sanic_edge_auth.session.cookies import (
    CHUNK_BUDGET,
    SessionCookiePolicy,
    SessionTooLarge,
    delete_session_cookies,
    family_names,
    is_last_session_cookie,
    is_loopback_host,
    join_chunks,
    policy_for_origin,
    session_chunks_in_header,
    set_session_cookies,
    split_as_written,
    split_value,
)

SECURE = policy_for_origin("https://app.example.com/api/auth0/callback")
LOOPBACK = policy_for_origin("http://127.0.0.1:8000/")
CODEC = SessionCodec(Secret("cookie-test-secret-" + "c" * 32))


def big_session(sealed_size: int) -> dict[str, Any]:
    """A session whose sealed value is about ``sealed_size`` characters long."""
    # random text: nothing repeats, like real tokens
    return {"access_token": secrets.token_urlsafe((sealed_size * 3 // 4 - 60) * 3 // 4)}


def sealed_for(policy: SessionCookiePolicy, data: dict[str, Any]) -> str:
    return CODEC.seal(data, name=policy.full_name, expires_at=2e9)


def set_cookie_headers(response: HTTPResponse) -> list[dict[str, str]]:
    """Each Set-Cookie as {"name":..., "value":..., "<attribute lower>": value or ""}."""
    parsed = []
    for cookie in response.cookies.cookies:
        first, *attributes = str(cookie).split("; ")
        name, _, value = first.partition("=")
        entry = {"name": name, "value": value}
        for attribute in attributes:
            key, _, attr_value = attribute.partition("=")
            entry[key.lower()] = attr_value
        parsed.append(entry)
    return parsed


@pytest.mark.parametrize(
    ("origin", "secure", "name"),
    [
        ("https://app.example.com/cb", True, "__Host-edge_auth_session"),
        ("https://127.0.0.1:8443", True, "__Host-edge_auth_session"),
        ("http://127.0.0.1:8000/cb", False, "edge_auth_session"),
        ("http://localhost:8000", False, "edge_auth_session"),
        ("http://app.localhost", False, "edge_auth_session"),
        ("http://[::1]:8000", False, "edge_auth_session"),
        ("HTTP://LOCALHOST", False, "edge_auth_session"),
    ],
)
def test_secure_and_host_prefixed_except_plain_http_on_loopback(
    origin: str, secure: bool, name: str
) -> None:
    policy = policy_for_origin(origin)
    assert (policy.secure, policy.host_prefix, policy.full_name) == (secure, secure, name)


@pytest.mark.parametrize(
    "origin", ["http://app.example.com", "http://10.0.0.1", "ftp://localhost", "/relative"]
)
def test_plain_http_off_loopback_and_other_schemes_are_refused(origin: str) -> None:
    with pytest.raises(ValueError, match=r"https|http\(s\)|no host"):
        policy_for_origin(origin)


def test_loopback_hosts() -> None:
    assert is_loopback_host("127.5.6.7")
    assert is_loopback_host("localhost.")
    assert not is_loopback_host("localhost.example.com")
    assert not is_loopback_host("128.0.0.1")


def test_a_small_session_is_one_cookie_with_the_safe_attributes() -> None:
    sealed = sealed_for(SECURE, {"sub": "u1"})
    response = empty()
    names = set_session_cookies(response, SECURE, sealed, max_age=3600)
    assert names == ["__Host-edge_auth_session"]
    [cookie] = set_cookie_headers(response)
    assert cookie == {
        "name": "__Host-edge_auth_session",
        "value": sealed,
        "path": "/",
        "max-age": "3600",
        "secure": "",
        "httponly": "",
        "samesite": "Lax",
    }
    assert "domain" not in cookie


def test_loopback_cookies_are_not_secure_and_not_prefixed() -> None:
    response = empty()
    set_session_cookies(response, LOOPBACK, sealed_for(LOOPBACK, {"sub": "u1"}))
    [cookie] = set_cookie_headers(response)
    assert cookie["name"] == "edge_auth_session"
    assert "secure" not in cookie
    assert (cookie["httponly"], cookie["samesite"], cookie["path"]) == ("", "Lax", "/")
    assert "max-age" not in cookie  # no max_age: a browser-session cookie


def test_a_session_over_4kb_is_split_within_budget_and_reassembled() -> None:
    data = big_session(6000)
    sealed = sealed_for(SECURE, data)
    assert 4096 < len(sealed) <= 6000
    cookies = split_value(SECURE, sealed)
    assert [name for name, _ in cookies] == [
        "__Host-edge_auth_session.0",
        "__Host-edge_auth_session.1",
    ]
    for name, value in cookies:
        assert len(name) + 1 + len(value) <= CHUNK_BUDGET
    assert len(cookies[0][0]) + 1 + len(cookies[0][1]) == CHUNK_BUDGET  # fills the first
    received = dict(reversed(cookies))  # the order the browser sends them is not ours
    received["other_app_cookie"] = "x"
    joined = join_chunks(SECURE, received)
    assert joined == sealed
    assert CODEC.open(joined, name=SECURE.full_name).data == data


def test_chunked_cookies_on_a_response_carry_the_same_attributes() -> None:
    sealed = sealed_for(SECURE, big_session(6000))
    response = empty()
    set_session_cookies(response, SECURE, sealed, max_age=60)
    headers = set_cookie_headers(response)
    assert [cookie["name"] for cookie in headers] == [
        "__Host-edge_auth_session.0",
        "__Host-edge_auth_session.1",
    ]
    for cookie in headers:
        assert {k: v for k, v in cookie.items() if k not in ("name", "value")} == {
            "path": "/",
            "max-age": "60",
            "secure": "",
            "httponly": "",
            "samesite": "Lax",
        }
    assert "".join(cookie["value"] for cookie in headers) == sealed


def test_the_exact_budget_boundary() -> None:
    full = SECURE.full_name
    fits = "A" * (CHUNK_BUDGET - len(full) - 1)
    assert split_value(SECURE, fits) == [(full, fits)]
    assert len(split_value(SECURE, fits + "A")) == 2


def test_a_session_that_shrinks_deletes_its_stale_chunks_with_the_same_attributes() -> None:
    present = ["__Host-edge_auth_session.0", "__Host-edge_auth_session.1", "unrelated"]
    response = empty()
    set_session_cookies(response, SECURE, sealed_for(SECURE, {"sub": "u1"}), present=present)
    by_name = {cookie["name"]: cookie for cookie in set_cookie_headers(response)}
    assert set(by_name) == {
        "__Host-edge_auth_session",
        "__Host-edge_auth_session.0",
        "__Host-edge_auth_session.1",
    }
    for stale in ("__Host-edge_auth_session.0", "__Host-edge_auth_session.1"):
        assert by_name[stale] == {
            "name": stale,
            "value": '""',  # Sanic quotes an empty value; Max-Age=0 deletes it anyway
            "path": "/",
            "max-age": "0",
            "secure": "",
            "httponly": "",
            "samesite": "Lax",
        }


def test_a_session_that_grows_deletes_the_single_cookie() -> None:
    response = empty()
    set_session_cookies(
        response,
        LOOPBACK,
        sealed_for(LOOPBACK, big_session(6000)),
        present=["edge_auth_session"],
    )
    by_name = {cookie["name"]: cookie for cookie in set_cookie_headers(response)}
    assert by_name["edge_auth_session"]["max-age"] == "0"
    assert by_name["edge_auth_session"]["samesite"] == "Lax"
    assert "httponly" in by_name["edge_auth_session"]
    assert by_name["edge_auth_session.0"]["value"]


def test_ending_a_session_deletes_every_present_chunk() -> None:
    present = [
        "__Host-edge_auth_session.0",
        "__Host-edge_auth_session.1",
        "__Host-edge_auth_session.01",  # not our spelling, still ours to clear
        "__Host-edge_auth_session_other",
        "edge_auth_session",  # an unprefixed stand-in is not the secure cookie
    ]
    response = empty()
    deleted = delete_session_cookies(response, SECURE, present)
    assert deleted == present[:3]
    headers = set_cookie_headers(response)
    assert [cookie["name"] for cookie in headers] == present[:3]
    assert all(cookie["max-age"] == "0" and "secure" in cookie for cookie in headers)


def test_family_names() -> None:
    assert family_names(LOOPBACK, ["edge_auth_session", "edge_auth_session.7", "x"]) == [
        "edge_auth_session",
        "edge_auth_session.7",
    ]
    assert family_names(LOOPBACK, ["edge_auth_session.a", "edge_auth_sessionx"]) == []


def test_absent_session() -> None:
    assert join_chunks(SECURE, {}) is None
    assert (
        join_chunks(SECURE, {"edge_auth_session": "a", "__Secure-edge_auth_session": "b"}) is None
    )


@pytest.mark.parametrize(
    "received",
    [
        {"n.0": "a"},  # one chunk alone: a single value never uses a suffix
        {"n.0": "a", "n.2": "b"},  # a gap
        {"n.1": "a", "n.2": "b"},  # chunk 0 missing
        {"n": "a", "n.0": "b", "n.1": "c"},  # both shapes at once
        {"n.0": "a", "n.01": "b"},  # not our spelling
        {"n": ["a", "b"]},  # a duplicate name (e.g. tossed from another path)
        {"n": ""},  # empty
        {f"n.{i}": "a" for i in range(17)},  # more chunks than ever set
        {"n.0": "a", "n.1": "b", "n." + "9" * 5000: "c"},  # a suffix too long for int()
    ],
)
def test_malformed_chunk_sets_are_refused(received: dict[str, Any]) -> None:
    policy = SessionCookiePolicy(name="n", secure=False)
    with pytest.raises(SessionCookieInvalid) as caught:
        join_chunks(policy, received)
    assert caught.value.reason == "malformed"


def test_sanic_request_cookie_lists_are_accepted() -> None:
    policy = SessionCookiePolicy(name="n", secure=False)
    assert join_chunks(policy, {"n.0": ["ab"], "n.1": ["cd"]}) == "abcd"


def chunks_of(data: dict[str, Any]) -> list[tuple[str, str]]:
    return split_value(SECURE, sealed_for(SECURE, data), max_total=16384)


def open_received(received: dict[str, str], policy: SessionCookiePolicy = SECURE) -> str:
    joined = join_chunks(policy, received)
    assert joined is not None
    with pytest.raises(SessionCookieInvalid) as caught:
        CODEC.open(joined, name=policy.full_name)
    return caught.value.reason


def test_a_tampered_byte_in_any_chunk_is_refused() -> None:
    cookies = chunks_of(big_session(9000))
    assert len(cookies) == 3
    for index, (name, value) in enumerate(cookies):
        for position in (0, len(value) // 2, len(value) - 1):
            altered = dict(cookies)
            flipped = "B" if value[position] != "B" else "C"
            altered[name] = value[:position] + flipped + value[position + 1 :]
            assert open_received(altered) in {"tampered", "malformed", "unknown_key"}, (
                index,
                position,
            )


def test_swapped_or_dropped_chunks_are_refused() -> None:
    cookies = chunks_of(big_session(9000))
    (n0, v0), (n1, v1), (n2, v2) = cookies
    # refused by the format checks or by the GCM tag, depending on where bytes land
    refused = {"malformed", "unknown_key", "tampered"}
    assert open_received({n0: v0, n1: v2, n2: v1}) in refused
    assert open_received({n0: v0, n1: v1}) in refused  # last chunk lost
    assert open_received({n0: v1, n1: v0, n2: v2}) in refused  # header moved away


def test_a_chunk_from_another_session_is_refused() -> None:
    first = chunks_of(big_session(6000))
    second = chunks_of(big_session(6000))
    assert open_received({first[0][0]: first[0][1], second[1][0]: second[1][1]}) == "tampered"


def test_chunks_moved_to_another_cookie_name_are_refused() -> None:
    other = SessionCookiePolicy(name="another_session", secure=True)
    cookies = chunks_of(big_session(6000))
    moved = {name.replace(SECURE.full_name, other.full_name): value for name, value in cookies}
    assert join_chunks(other, moved) is not None
    assert open_received(moved, other) == "tampered"


def test_a_session_too_large_for_the_request_header_is_refused_before_setting() -> None:
    sealed = sealed_for(SECURE, big_session(8000))
    response = empty()
    with pytest.raises(SessionTooLarge) as caught:
        set_session_cookies(response, SECURE, sealed)
    assert caught.value.size > caught.value.max_total == 8192 - 2048
    assert "set-cookie" not in response.headers  # nothing set
    # a larger allowance (REQUEST_MAX_HEADER_SIZE raised to 16384) takes it
    assert len(split_value(SECURE, sealed, max_total=16384 - 2048)) == 3


# -- reading the session's cookies straight from the Cookie header

N = SessionCookiePolicy(name="n", secure=False)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("n=abc", ("abc",)),
        ("a=1; n=abc", ("abc",)),
        ("n=abc; a=1", ("abc",)),
        ("a=1;n=abc;b=2", ("abc",)),  # no space after the separator
        ("a=1;  \tn=abc ; b=2", ("abc",)),  # blanks around the value
        ("n.0=ab; x=1; n.1=cd", ("ab", "cd")),  # chunks, other cookies between them
        ("n.1=cd; n.0=ab", ("ab", "cd")),  # chunks out of order
        ("a=1", None),
        ("", None),
        ("xn=abc", None),  # another cookie whose name ends like ours
        ("nx=abc", None),  # ... or starts like ours
        ("a=n=abc", None),  # our name inside another cookie's value
        ("a=xx n=abc", None),  # ... after a blank inside that value
        ("a=1; nx=2; n=abc", ("abc",)),  # a look-alike before the real one
        ("n=abc; a=n=zzz", ("abc",)),  # our name again, inside a later value
        ("n", None),  # a name without a value is no cookie
        ("a=1; n", None),  # ... nor at the end of the header
        ("a=1; n= abc \t", ("abc",)),  # the last cookie, blanks around its value
        (";n=abc", ("abc",)),  # right after a leading separator
    ],
)
def test_session_chunks_found_in_the_cookie_header(
    header: str, expected: tuple[str, ...] | None
) -> None:
    assert session_chunks_in_header(N, header) == expected


@pytest.mark.parametrize(
    "header",
    [
        "n=abc; n=def",  # a duplicate (tossed from a sibling path, say)
        "n=; a=1",  # empty
        "a=1; n=",  # empty, the last cookie
        "n=abc; n.0=a; n.1=b",  # both shapes at once
        "n.0=a; n.2=b",  # a gap
        "n.0=a",  # one chunk alone
        "n.0=a; n.0=b; n.1=c",  # a duplicate chunk
    ],
)
def test_malformed_session_cookies_in_the_header_are_refused(header: str) -> None:
    with pytest.raises(SessionCookieInvalid) as caught:
        session_chunks_in_header(N, header)
    assert caught.value.reason == "malformed"


def test_header_reading_agrees_with_sanic_cookie_parsing() -> None:
    """Real chunked and unchunked sessions among other cookies: the header scan finds
    what Sanic's own parser (request.cookies) hands to join_chunks."""
    from sanic.cookies.request import parse_cookie

    for size in (200, 3000, 9000):
        sealed = sealed_for(SECURE, big_session(size))
        cookies = split_value(SECURE, sealed, max_total=16384)
        parts = ["theme=dark", *(f"{name}={value}" for name, value in cookies), "lang=fr"]
        header = "; ".join(parts)
        found = session_chunks_in_header(SECURE, header)
        assert found is not None
        assert "".join(found) == sealed == join_chunks(SECURE, parse_cookie(header))


@pytest.mark.parametrize(
    ("header", "fast"),
    [
        ("n=abc", True),
        ("a=1; n=abc", True),
        ("a=1;n=abc", True),
        ("a=1; n=xabc", False),  # another value that ends like ours
        ("a=1; n=xbc", False),  # ... or has its length and tail, not its start
        ("a=1; xn=abc", False),  # another name that ends like ours
        ("a=1 n=abc", False),  # not where a cookie starts
        ("a=1; n:abc", False),  # our name, then no "="
        ("n=abc; a=1", False),  # not the last cookie: read in full
        ("n=zzz; n=abc", False),  # a duplicate before it: refused in full
        ("a=n=q; n=abc", False),  # our name inside an earlier value: read in full
        ("n.0=ab; n=abc", False),  # both shapes at once: refused in full
        ("a=1; n= abc", False),  # blanks: read in full
        ("abc", False),
        ("", False),
    ],
)
def test_the_last_cookie_shortcut_only_confirms_what_the_full_read_finds(
    header: str, fast: bool
) -> None:
    """The warm path's shortcut (a cache entry found by the header's tail, confirmed
    by comparisons) says yes only where reading the header in full finds exactly
    that one value; everything else falls through to the full read."""
    assert is_last_session_cookie(N, header, ("abc",)) is fast
    if fast:
        assert session_chunks_in_header(N, header) == ("abc",)
    assert not is_last_session_cookie(N, header, ("ab", "c"))  # chunks: never
    assert not is_last_session_cookie(N, header, b"abc")  # a stored record: never


@pytest.mark.parametrize(
    "header",
    [
        "__Host-edge_auth_sessionX=abc",
        "x__Host-edge_auth_session=abc",
        "edge_auth_session=abc",  # the unprefixed name: not ours on https
        "__Secure-edge_auth_session=abc",
        "a=__Host-edge_auth_session=abc",
        "__Host-edge_auth_session.x=abc",
    ],
)
def test_look_alikes_of_the_prefixed_name_are_not_the_session(header: str) -> None:
    assert session_chunks_in_header(SECURE, header) is None


def test_only_the_split_we_make_is_accepted() -> None:
    sealed = sealed_for(SECURE, big_session(9000))
    ours = tuple(value for _, value in split_value(SECURE, sealed, max_total=16384))
    assert len(ours) >= 3
    assert split_as_written(SECURE, ours)
    assert split_as_written(SECURE, (sealed[:100],))  # one cookie: nothing to compare
    moved = (ours[0][:-1], ours[0][-1] + ours[1], *ours[2:])  # the same value, cut elsewhere
    assert "".join(moved) == sealed
    assert not split_as_written(SECURE, moved)
    small = sealed[:200]
    assert not split_as_written(SECURE, (small[:100], small[100:]))  # would have been one cookie
    assert not split_as_written(SECURE, (*ours[:-1], ""))  # an empty last chunk
