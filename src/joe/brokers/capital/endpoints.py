"""Which Capital.com hosts to talk to: demo by default, live only when explicitly not demo *and* live mode."""

from __future__ import annotations

from dataclasses import dataclass

LIVE_API_URL = "https://api-capital.backend-capital.com"
DEMO_API_URL = "https://demo-api-capital.backend-capital.com"
STREAM_URL = "wss://api-streaming-capital.backend-capital.com/connect"


@dataclass(frozen=True, slots=True)
class Endpoints:
    """REST base (without `/api/v1`) and streaming URL; `live` is True only for the real-money host."""

    api_url: str
    stream_url: str | None
    live: bool


def normalise_stream_url(host: str) -> str:
    """`streamingHost` from the login (`wss://…com/`) plus `connect`, with exactly one slash between."""
    host = host.strip()
    if host.rstrip("/").endswith("/connect"):
        return host.rstrip("/")
    return host.rstrip("/") + "/connect"


def resolve_endpoints(
    demo: bool, mode: str, api_url_override: str | None = None, stream_url_override: str | None = None
) -> Endpoints:
    """Pick the hosts. The live REST host is chosen only when `demo` is False and `mode` is "live".

    Anything else (demo true, paper/shadow/unknown mode) resolves to the demo host, so a mistake can
    never reach real money. Overrides (the simulator) win for the URL but still report `live=False`
    unless the live conditions hold. `stream_url` None means: use `streamingHost` from the login.
    """
    is_live = (not demo) and mode.strip().lower() == "live"
    api = (api_url_override or "").strip() or (LIVE_API_URL if is_live else DEMO_API_URL)
    stream = (stream_url_override or "").strip() or None
    return Endpoints(
        api_url=api.rstrip("/"),
        stream_url=normalise_stream_url(stream) if stream else None,
        live=is_live and not (api_url_override or "").strip(),
    )
