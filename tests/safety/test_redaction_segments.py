"""Incremental secret matchers (issue 13): one matcher per registration, union of their spans.

Rebuilding one matcher of every form at each Capital login was quadratic and grew for as long as a
daemon kept logging in. These tests hold the incremental scheme to the one-shot matcher's guarantees
and prove that rotating session tokens are bounded.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from joe.audit.redaction import (
    MASK,
    clear_secrets,
    matcher_count,
    redact_text,
    register_secret,
    registered_secret_count,
)
from joe.audit.secret_forms import (
    LAYOUT_CHARS,
    LayoutBlindMatcher,
    _View,
    layer_spans,
    secret_forms,
    sub_union,
    truncated_forms,
)
from joe.audit.secret_segments import SESSION_TOKENS_KEPT
from joe.brokers.capital.session import SessionState


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    clear_secrets()
    yield
    clear_secrets()


def _forms(secret: str) -> set[str]:
    return secret_forms(secret) | truncated_forms(secret)


def _one_shot_spans(matcher: LayoutBlindMatcher, text: str) -> set[int]:
    """The characters the one combined matcher masked on layer 1 before segments (``finditer``)."""
    assert matcher.plain is not None
    view = _View(text, LAYOUT_CHARS)
    chars: set[int] = set()
    for m in matcher.plain.finditer(view.flat):
        if m.end() > m.start():
            chars.update(range(view.to_orig(m.start()), view.to_orig(m.end() - 1) + 1))
    return chars


# Secrets sharing letters so that their forms overlap and chain inside texts.
_secret = st.text(alphabet="abAB1", min_size=4, max_size=6)
_filler = st.text(alphabet="abxA1 \n", max_size=4)


@st.composite
def _secrets_and_text(draw: st.DrawFn) -> tuple[list[str], str]:
    secrets = draw(st.lists(_secret, min_size=2, max_size=3, unique_by=str.lower))
    parts: list[str] = []
    for _ in range(draw(st.integers(1, 6))):
        parts.append(draw(_filler))
        form = draw(st.sampled_from(sorted(_forms(draw(st.sampled_from(secrets))))))
        if draw(st.booleans()):  # cut a form short, or wrap it across a line
            cut = draw(st.integers(0, len(form)))
            form = form[:cut] + draw(st.sampled_from(["", "\n  ", " "])) + form[cut:]
        parts.append(form)
    return secrets, "".join(parts)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_secrets_and_text())
def test_segments_mask_at_least_every_character_the_one_shot_matcher_masks(
    case: tuple[list[str], str],
) -> None:
    secrets, text = case
    per_secret = [LayoutBlindMatcher(_forms(s)) for s in secrets]
    one_shot = LayoutBlindMatcher(set().union(*(_forms(s) for s in secrets)))
    union = {
        i
        for start, end in layer_spans(text, [m.plain for m in per_secret], LAYOUT_CHARS, edges=False)
        for i in range(start, end)
    }
    assert _one_shot_spans(one_shot, text) <= union
    # ...and the masked text shows no registered form the one-shot output does not show.
    out_union, out_one = sub_union(per_secret, text, MASK), one_shot.sub(text, MASK)
    for form in one_shot.words:
        plain = LAYOUT_CHARS.sub("", form).lower()
        if plain not in LAYOUT_CHARS.sub("", out_one).lower():
            assert plain not in LAYOUT_CHARS.sub("", out_union).lower(), form


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.text(alphabet="abcdefXYZ0129-_", min_size=6, max_size=10), min_size=2, max_size=3, unique=True
    ),
    st.sampled_from(["\x1b[31m", "\\n", "%0A", "\x1b]8;;x\x07", ""]),
)
def test_segments_mask_secrets_inside_escape_sequences_as_the_one_shot_does(
    secrets: list[str], escape: str
) -> None:
    per_secret = [LayoutBlindMatcher(_forms(s)) for s in secrets]
    one_shot = LayoutBlindMatcher(set().union(*(_forms(s) for s in secrets)))
    text = "x=" + escape.join(s[:3] + escape + s[3:] for s in secrets) + escape + "|" + secrets[0].upper()
    out_one, out_union = one_shot.sub(text, MASK), sub_union(per_secret, text, MASK)
    for s in secrets:
        if s.lower() not in out_one.lower():
            assert s.lower() not in out_union.lower()
    assert out_union.count(MASK) >= 1


def test_a_rotating_session_token_stays_masked_for_the_last_few_logins_only() -> None:
    register_secret("perm-api-key-0001")
    tokens = [f"cst-token-{n:04d}-abcdef" for n in range(SESSION_TOKENS_KEPT + 3)]
    counts = []
    for token in tokens:
        register_secret(token, slot="capital.cst")
        counts.append(registered_secret_count())
    dropped, kept = tokens[:3], tokens[3:]
    assert all(MASK in redact_text(f"CST {t}") and t not in redact_text(f"CST {t}") for t in kept)
    assert all(redact_text(f"CST {t}") == f"CST {t}" for t in dropped)
    assert MASK in redact_text("key perm-api-key-0001")
    # The registry stops growing once the slot is full: memory is bounded however long the daemon runs.
    assert counts[-1] == counts[SESSION_TOKENS_KEPT - 1]
    assert matcher_count() == 1 + SESSION_TOKENS_KEPT


def test_permanent_secrets_merge_log_structured_and_all_stay_masked() -> None:
    secrets = [f"permanent-secret-{n:03d}" for n in range(12)]
    for s in secrets:
        register_secret(s)
        assert MASK in redact_text(f"value {s} end")  # each registration is usable at once
    assert matcher_count() <= 4  # O(log n) segments, not one per secret
    out = redact_text(" ".join(secrets))
    assert not any(s in out for s in secrets)


def test_a_capital_login_registers_its_tokens_as_rotating_secrets() -> None:
    state = SessionState()
    for n in range(SESSION_TOKENS_KEPT + 2):
        state.start(f"cst-value-{n:03d}-xyz", f"xst-value-{n:03d}-xyz", body={})
    assert matcher_count() == 2 * SESSION_TOKENS_KEPT
    assert redact_text(f"CST={state.cst};XST={state.security_token}").count(MASK) == 2
    assert "cst-value-000-xyz" in redact_text("old cst-value-000-xyz")


def test_a_form_starting_inside_another_form_of_the_same_matcher_is_still_masked() -> None:
    # One matcher of all three words masks "zzq1" then "2345678". Alone, the second matcher's
    # "q12" starts inside "zzq1" and ends inside "2345678": a scan that resumed after "q12" would
    # leave "345678" visible, so every matcher reports its match at every start (`_matches`).
    one_shot = LayoutBlindMatcher({"zzq1", "q12", "2345678"})
    split = [LayoutBlindMatcher({"zzq1"}), LayoutBlindMatcher({"q12", "2345678"})]
    text = "id zzq12345678 end"
    assert one_shot.sub(text, MASK) == "id *** end"  # overlapping matches: one mask
    assert sub_union(split, text, MASK) == "id *** end"
