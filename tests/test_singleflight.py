"""SingleFlight: one call per key, shared results and failures, fresh calls after."""

from __future__ import annotations

import asyncio

import pytest

from sanic_edge_auth.oidc.singleflight import SingleFlight


async def test_concurrent_callers_share_one_call_and_its_result() -> None:
    flight: SingleFlight[int] = SingleFlight()
    calls = 0

    async def call() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return calls

    results = await asyncio.gather(*(flight.run("k", call) for _ in range(50)))
    assert results == [1] * 50
    assert calls == 1
    assert not flight.in_flight("k")
    assert await flight.run("k", call) == 2  # a later call is a new flight


async def test_a_failure_reaches_every_waiter_and_is_not_remembered() -> None:
    flight: SingleFlight[int] = SingleFlight()

    async def failing() -> int:
        await asyncio.sleep(0.01)
        raise RuntimeError("idp down")

    outcomes = await asyncio.gather(
        *(flight.run("k", failing) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(outcome, RuntimeError) for outcome in outcomes)

    async def working() -> int:
        return 7

    assert await flight.run("k", working) == 7


async def test_different_keys_do_not_share() -> None:
    flight: SingleFlight[str] = SingleFlight()

    async def echo(value: str) -> str:
        await asyncio.sleep(0.01)
        return value

    assert await asyncio.gather(
        flight.run("a", lambda: echo("a")), flight.run("b", lambda: echo("b"))
    ) == [
        "a",
        "b",
    ]


async def test_a_background_call_that_fails_leaves_no_unretrieved_exception() -> None:
    flight: SingleFlight[None] = SingleFlight()

    async def failing() -> None:
        raise ValueError("boom")

    future = flight.start("k", failing)
    await asyncio.sleep(0.01)
    assert future.done()
    with pytest.raises(ValueError, match="boom"):
        future.result()
