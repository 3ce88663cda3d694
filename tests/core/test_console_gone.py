"""A console that goes away (a closed pipe, a hung-up terminal, a full disk under a redirect) never
raises out of a write: `joe.audit.streams.RedactingStream` drops console output from then on and
points the descriptor at /dev/null, so a run is never stopped half-way by its console."""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from joe.audit.redaction import register_secret
from joe.audit.streams import RedactingStream


class _Console(io.StringIO):
    """A console that fails every write from the `fail_at`-th on with `err`."""

    def __init__(self, fail_at: int, err: int) -> None:
        super().__init__()
        self.fail_at, self.err, self.writes = fail_at, err, 0

    def write(self, s: str) -> int:
        self.writes += 1
        if self.writes >= self.fail_at:
            raise OSError(self.err, os.strerror(self.err))
        return super().write(s)


@given(
    lines=st.lists(st.text(alphabet="abc xyz\t", max_size=12), min_size=1, max_size=12),
    fail_at=st.integers(1, 14),
    err=st.sampled_from([errno.EPIPE, errno.EIO, errno.ENOSPC]),
)
def test_writes_never_raise_and_what_got_through_is_every_line_before_the_failure(
    lines: list[str], fail_at: int, err: int
) -> None:
    inner = _Console(fail_at, err)
    stream = RedactingStream(inner)  # type: ignore[arg-type]
    for line in lines:
        assert stream.write(line + "\n") == len(line) + 1
    stream.write("tail without newline")
    stream.flush()
    stream.close_quietly()
    sent = [f"{x}\n" for x in lines] + ["tail without newline"]  # one inner write each
    assert inner.getvalue() == "".join(sent[: fail_at - 1])
    assert (stream.lost is None) == (fail_at > len(sent))
    if stream.lost is not None:
        assert stream.lost.errno == err


def test_a_closed_pipe_sends_the_descriptor_to_dev_null_and_secrets_stay_masked(tmp_path: Path) -> None:
    register_secret("console-gone-secret-7731")
    r, w = os.pipe()
    inner = open(w, "w", buffering=1, closefd=True)  # noqa: SIM115 - closed below
    stream = RedactingStream(inner)
    try:
        stream.write("before console-gone-secret-7731\n")
        got = os.read(r, 1000)
        assert got.startswith(b"before ") and b"console-gone-secret" not in got
        os.close(r)  # the reader goes away (`| head` exits, the daemon is killed)
        stream.write("after\n")  # BrokenPipeError inside: dropped, not raised
        assert isinstance(stream.lost, BrokenPipeError)
        assert os.readlink(f"/proc/self/fd/{w}") == os.devnull
        stream.write("more\n")
        stream.flush()
    finally:
        inner.close()  # flushes the inner buffer into /dev/null: no error at close either
