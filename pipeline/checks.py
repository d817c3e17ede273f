"""``livescore providers check NAME``: one real request, reported plainly."""

from __future__ import annotations

import time
from dataclasses import dataclass

from livescore import clock
from livescore.feeds import FeedConfig
from pipeline.context import PipelineContext
from pipeline.polling import pause_feed
from providers.errors import PayloadError, ProviderError, Throttled
from providers.http import FeedStats


@dataclass(frozen=True, slots=True)
class CheckResult:
    feed: str
    ok: bool
    url: str
    stats: FeedStats
    elapsed_s: float
    budget_left: int | None
    matches: int | None = None
    error: str | None = None

    def describe(self) -> str:
        lines = [f"feed {self.feed}: {'OK' if self.ok else 'FAILED'}", f"  request: GET {self.url}"]
        if self.stats.last_status is not None:
            lines.append(f"  status: HTTP {self.stats.last_status}")
        if self.stats.last_latency_s is not None:
            lines.append(f"  latency: {self.stats.last_latency_s * 1000:.0f} ms (last attempt)")
        lines.append(f"  attempts: {self.stats.requests}, total {self.elapsed_s * 1000:.0f} ms")
        if self.stats.retry_waits:
            waits = ", ".join(f"{w:.1f}s" for w in self.stats.retry_waits)
            lines.append(f"  retried after: {waits}")
        if self.budget_left is not None:
            lines.append(
                f"  budget left: {self.budget_left} of {self.stats.budget_per_minute}/min (shared)"
            )
        if self.stats.provider_remaining is not None:
            lines.append(f"  provider says remaining: {self.stats.provider_remaining}")
        if self.matches is not None:
            lines.append(f"  parsed: {self.matches} matches")
        if self.error:
            lines.append(f"  error: {self.error}")
        return "\n".join(lines)


async def check_feed(ctx: PipelineContext, feed: FeedConfig) -> CheckResult:
    client = ctx.client_for(feed)
    spec = client.adapter.today_request(clock.now().date())
    started = time.monotonic()
    matches = None
    error = None
    try:
        response = await client.send(spec)
        parsed = client.adapter.parse_report(response)
        matches = len(parsed.observations)
        if parsed.errors:
            error = f"{len(parsed.errors)} malformed match(es) set aside, first: {parsed.errors[0]}"
    except PayloadError as exc:
        error = f"{exc} (the provider answered, but we cannot read it)"
    except Throttled as exc:
        await pause_feed(ctx, feed.name, exc)  # the workers hold off too
        error = str(exc)
    except ProviderError as exc:
        error = str(exc)
    return CheckResult(
        feed=feed.name,
        ok=error is None,
        url=client.url_for(spec),
        stats=client.stats,
        elapsed_s=time.monotonic() - started,
        budget_left=await client.budget_remaining(),
        matches=matches,
        error=error,
    )
