"""The one table of IBKR message codes and what each means for the order it names.

Source of every row: `../shared/specs/ibkr-message-codes.md` (IB's "Message Codes" page, ib_async
2.1 `Wrapper.error`, and the issues/adapters cited there). TWS sends errors, warnings and pure
notices through one callback, `error(reqId, code, msg)`; a code is a hint, never an order state.

A code's meaning can depend on its context, so `classify(code, message, request=, acknowledged=)`
takes the request the notice answers ("place", "modify", "cancel" or "") and whether the order was
ever acknowledged (a permId or a PreSubmitted/Submitted status was seen):

- 201 / 110 / 200 on a *new, never acknowledged* order: REJECTED; 201 on a working order (a refused
  revision, an OCA sibling already filled): AMBIGUOUS; 110 on a modify: REQUEST_REFUSED.
- 10148 (cancel refused, "state: X") is REQUEST_REFUSED: never a cancel confirmation.
- 202 (order cancelled) is AMBIGUOUS: a real cancel, but the order may have part-filled first, so
  the state comes from the broker's status/completed order, not from the code.
- 10349 (TIF set to DAY by preset) is a NOTICE: the order is working.
- Any code not in the table: AMBIGUOUS (ask the broker).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from joe.core.reports import CodeMeaning

M = CodeMeaning


@dataclass(frozen=True, slots=True)
class CodeRule:
    """Meaning of one code: `default`, overridden for a never-acknowledged new order (`new`), a
    modify (`modify`) or a cancel (`cancel`)."""

    name: str
    default: CodeMeaning
    new: CodeMeaning | None = None
    modify: CodeMeaning | None = None
    cancel: CodeMeaning | None = None


def _rules(codes: tuple[int, ...], rule: CodeRule) -> dict[int, CodeRule]:
    return dict.fromkeys(codes, rule)


CODES: dict[int, CodeRule] = {
    # a · notices: the order is accepted and keeps working
    10349: CodeRule("TIF set to DAY by order preset", M.NOTICE),
    404: CodeRule("short-sale shares not available; order held", M.NOTICE),
    399: CodeRule("order message error (warning text)", M.NOTICE),  # text saying "reject" → AMBIGUOUS
    2109: CodeRule("outsideRth flag ignored", M.NOTICE),
    **_rules(
        (2104, 2106, 2158, 2107, 2108, 2119), CodeRule("data farm OK / inactive / connecting", M.NOTICE)
    ),
    # b · rejected when new; ambiguous (or refused) on a working order
    201: CodeRule("order rejected", M.AMBIGUOUS, new=M.REJECTED),
    110: CodeRule("price not a multiple of min tick", M.AMBIGUOUS, new=M.REJECTED, modify=M.REQUEST_REFUSED),
    200: CodeRule("no security definition", M.AMBIGUOUS, new=M.REJECTED),
    103: CodeRule("duplicate order id", M.AMBIGUOUS),
    202: CodeRule("order cancelled", M.AMBIGUOUS),
    # c · a cancel or modify refused: the order keeps its previous state
    10148: CodeRule("cancel refused (order state given)", M.REQUEST_REFUSED),
    **_rules((104, 105, 329, 2102), CodeRule("modify refused", M.REQUEST_REFUSED)),
    # g · ambiguous: ask the broker
    10147: CodeRule("order to cancel not found", M.AMBIGUOUS),
    161: CodeRule("cancel attempted when not cancellable", M.AMBIGUOUS),
    135: CodeRule("order not found", M.AMBIGUOUS),
    136: CodeRule("order cannot be cancelled", M.AMBIGUOUS),
    321: CodeRule("server error validating request", M.AMBIGUOUS, modify=M.REQUEST_REFUSED),
    322: CodeRule("server error processing request", M.AMBIGUOUS),
    463: CodeRule("undocumented", M.AMBIGUOUS),
    10311: CodeRule("order will be direct-routed", M.AMBIGUOUS),
    # d · connectivity
    **_rules(
        (1100, 1101, 1102, 1300, 2110, 2103, 2105, 2157, 502, 504, 507, 326),
        CodeRule("connectivity", M.CONNECTIVITY),
    ),
    # e · market data
    **_rules(
        (354, 10089, 10090, 10186, 10167, 10168, 10197, 162, 165, 366, 317, 10225),
        CodeRule("market data", M.MARKET_DATA),
    ),
    # f · pacing
    **_rules((100, 420), CodeRule("pacing", M.PACING)),
}

_STATE = re.compile(r"state:\s*([A-Za-z]+)")


def classify(code: int, message: str = "", *, request: str = "", acknowledged: bool = False) -> CodeMeaning:
    """What `code` means for the order it names, in its context (see the module docstring).

    `request` is "place", "modify", "cancel" or "" (unsolicited / unknown). Unknown codes → AMBIGUOUS.
    """
    rule = CODES.get(int(code))
    if rule is None:
        return M.AMBIGUOUS
    if code == 399 and "reject" in message.lower():
        return M.AMBIGUOUS
    if code == 162 and "pacing" in message.lower():
        return M.PACING
    if request == "place" and not acknowledged and rule.new is not None:
        return rule.new
    if request == "modify" and rule.modify is not None:
        return rule.modify
    if request == "cancel" and rule.cancel is not None:
        return rule.cancel
    return rule.default


def refused_cancel_state(message: str) -> str:
    """The order state named in a 10148 text ("... cannot be cancelled, state: Filled." → "Filled"), or ""."""
    m = _STATE.search(message)
    return m.group(1) if m else ""


def is_connectivity(code: int) -> bool:
    rule = CODES.get(int(code))
    return rule is not None and rule.default is M.CONNECTIVITY
