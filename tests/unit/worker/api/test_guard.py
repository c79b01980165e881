"""The guard's measure of a request head, held against the bytes a client sends."""

import pytest

from worker.api.guard import head_size


@pytest.mark.parametrize(
    ("target", "path", "query"),
    [(b"/v1/runs", b"/v1/runs", b""), (b"/v1/runs?limit=5&status=failed", b"/v1/runs", b"limit=5&status=failed")],
)
def test_a_head_measures_as_many_bytes_as_were_sent(target: bytes, path: bytes, query: bytes) -> None:
    sent = b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok_a\r\n\r\n"
    scope = {
        "method": "GET",
        "path": path.decode(),
        "raw_path": path,
        "query_string": query,
        "headers": [(b"host", b"x"), (b"authorization", b"Bearer tok_a")],
    }
    assert head_size(scope) == len(sent)
