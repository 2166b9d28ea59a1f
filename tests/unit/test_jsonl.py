"""JsonlTailer: incremental, crash-proof reading of append-only JSONL files."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deck_tray.core.jsonl import JsonlTailer, NotRegularFile, SkippedFiles, open_regular, read_complete_lines


def line(obj: object) -> bytes:
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode("utf-8")


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


# -- appended bytes only -------------------------------------------------------------


def test_second_read_returns_only_the_records_appended_since_the_first(tmp_path: Path) -> None:
    p = tmp_path / "t.jsonl"
    p.write_bytes(line({"n": 1}) + line({"n": 2}))
    t = JsonlTailer(str(p))

    first = t.read_new()
    assert [r["n"] for r in first.records] == [1, 2]
    assert not first.reset and not first.missing
    assert t.offset == p.stat().st_size
    size_after_first = t.offset

    append(p, line({"n": 3}))
    second = t.read_new()
    assert [r["n"] for r in second.records] == [3]
    assert t.offset > size_after_first
    assert t.offset == p.stat().st_size

    # Nothing appended: nothing returned, offset unchanged.
    third = t.read_new()
    assert third.records == []
    assert t.offset == p.stat().st_size


def test_partial_last_line_is_held_back_until_its_newline_arrives(tmp_path: Path) -> None:
    p = tmp_path / "t.jsonl"
    whole = line({"msg": "hello wörld", "n": 2})
    p.write_bytes(line({"n": 1}) + whole[:9])
    t = JsonlTailer(str(p))

    assert [r["n"] for r in t.read_new().records] == [1]

    append(p, whole[9:-1])  # everything but the newline
    assert t.read_new().records == []
    assert t.stats.malformed == 0

    append(p, b"\n")
    assert t.read_new().records == [{"msg": "hello wörld", "n": 2}]
    assert t.stats.malformed == 0


def test_multibyte_character_split_between_writes_is_decoded_once_complete(tmp_path: Path) -> None:
    p = tmp_path / "t.jsonl"
    data = line({"t": "日本語 🎉"})
    cut = data.index("本".encode()) + 1  # in the middle of a 3-byte character
    p.write_bytes(data[:cut])
    t = JsonlTailer(str(p))
    assert t.read_new().records == []
    append(p, data[cut:])
    assert t.read_new().records == [{"t": "日本語 🎉"}]
    assert t.stats.non_utf8 == 0


# -- truncation and replacement -----------------------------------------------------


def test_truncated_file_is_reported_as_reset_and_read_from_the_start(tmp_path: Path) -> None:
    p = tmp_path / "t.jsonl"
    p.write_bytes(line({"n": 1}) + line({"n": 2}) + line({"n": 3}))
    t = JsonlTailer(str(p))
    assert len(t.read_new().records) == 3

    p.write_bytes(line({"n": 9}))  # rewritten in place, shorter
    res = t.read_new()
    assert res.reset is True
    assert res.records == [{"n": 9}]
    assert t.stats.resets == 1
    assert t.offset == p.stat().st_size

    # After the reset it tails normally again.
    append(p, line({"n": 10}))
    res = t.read_new()
    assert res.reset is False
    assert res.records == [{"n": 10}]


def test_replaced_file_new_inode_is_reported_as_reset_and_read_again(tmp_path: Path) -> None:
    p = tmp_path / "t.jsonl"
    p.write_bytes(line({"n": 1}))
    t = JsonlTailer(str(p))
    assert t.read_new().records == [{"n": 1}]

    # Replacement that is *longer* than the old file: only the inode tells.
    tmp = tmp_path / "t.jsonl.new"
    tmp.write_bytes(line({"n": "a"}) + line({"n": "b"}) + line({"n": "c"}))
    os.replace(tmp, p)

    res = t.read_new()
    assert res.reset is True
    assert [r["n"] for r in res.records] == ["a", "b", "c"]
    assert t.stats.resets == 1


# -- bad content is skipped and counted ---------------------------------------------


def test_bad_lines_are_skipped_counted_and_the_good_lines_around_them_kept(tmp_path: Path) -> None:
    p = tmp_path / "t.jsonl"
    p.write_bytes(
        line({"n": 1})
        + b'{"broken": \n'  # malformed JSON
        + line({"n": 2})
        + b"[1, 2, 3]\n"  # JSON, but not an object
        + b'"just a string"\n'  # JSON, but not an object
        + line({"n": 3})
        + b'{"t": "\xff\xfe"}\n'  # not UTF-8
        + line({"n": 4})
        + b"\n"  # blank line: not an error
        + line({"n": 5})
    )
    t = JsonlTailer(str(p))
    res = t.read_new()
    assert [r["n"] for r in res.records] == [1, 2, 3, 4, 5]
    assert t.stats.malformed == 3
    assert t.stats.non_utf8 == 1
    assert t.stats.oversized == 0


def test_oversized_line_is_skipped_and_counted(tmp_path: Path) -> None:
    p = tmp_path / "t.jsonl"
    big = line({"blob": "x" * 200})
    p.write_bytes(line({"n": 1}) + big + line({"n": 2}))
    t = JsonlTailer(str(p), max_line_bytes=64)
    res = t.read_new()
    assert [r["n"] for r in res.records] == [1, 2]
    assert t.stats.oversized == 1


def test_oversized_line_arriving_in_pieces_is_skipped_once(tmp_path: Path) -> None:
    p = tmp_path / "t.jsonl"
    big = line({"blob": "y" * 300})
    p.write_bytes(line({"n": 1}) + big[:100])
    t = JsonlTailer(str(p), max_line_bytes=64)
    assert [r["n"] for r in t.read_new().records] == [1]
    append(p, big[100:200])
    assert t.read_new().records == []
    append(p, big[200:] + line({"n": 2}))
    res = t.read_new()
    # The tail of the oversized line must not be parsed as a record (nor counted as malformed).
    assert res.records == [{"n": 2}]
    assert t.stats.oversized == 1
    assert t.stats.malformed == 0


# -- vanished file ------------------------------------------------------------------


def test_file_that_does_not_exist_is_missing_not_an_error(tmp_path: Path) -> None:
    t = JsonlTailer(str(tmp_path / "nope.jsonl"))
    res = t.read_new()
    assert res.missing is True
    assert res.records == []


def test_file_that_vanishes_is_missing_and_reread_when_it_comes_back(tmp_path: Path) -> None:
    p = tmp_path / "t.jsonl"
    p.write_bytes(line({"n": 1}))
    t = JsonlTailer(str(p))
    assert t.read_new().records == [{"n": 1}]

    p.unlink()
    res = t.read_new()
    assert res.missing is True
    assert res.records == []

    p.write_bytes(line({"n": 1}) + line({"n": 2}))
    res = t.read_new()
    assert res.missing is False
    assert [r["n"] for r in res.records] == [1, 2]


# -- tail window --------------------------------------------------------------------


def test_tail_bytes_starts_near_the_end_and_skips_the_cut_first_line(tmp_path: Path) -> None:
    p = tmp_path / "t.jsonl"
    records = [{"n": i, "pad": "z" * 40} for i in range(100)]
    p.write_bytes(b"".join(line(r) for r in records))
    t = JsonlTailer(str(p), tail_bytes=300)
    res = t.read_new()
    assert 0 < len(res.records) < 10
    # A suffix of the file, every record intact (no half line parsed as a record).
    assert res.records == records[-len(res.records) :]
    assert t.stats.malformed == 0
    # And it keeps tailing from there.
    append(p, line({"n": 100}))
    assert t.read_new().records == [{"n": 100}]


def test_tail_bytes_never_yields_a_corrupted_first_line_whatever_the_cut(tmp_path: Path) -> None:
    p = tmp_path / "t.jsonl"
    # Lines whose tails are themselves valid JSON objects, so a cut that is not skipped shows.
    records = [{"outer": {"inner": i}, "k": i} for i in range(8)]
    data = b"".join(line(r) for r in records)
    p.write_bytes(data)
    line_starts = {0}
    for i, b in enumerate(data):
        if b == 0x0A:
            line_starts.add(i + 1)
    for tail in range(1, len(data) + 1):
        t = JsonlTailer(str(p), tail_bytes=tail)
        got = t.read_new().records
        start = len(data) - tail
        expected_count = sum(1 for s in line_starts if s >= start and s < len(data))
        assert got == records[len(records) - expected_count :], f"tail_bytes={tail}"
        assert t.stats.malformed == 0, f"tail_bytes={tail}"


def test_tail_bytes_larger_than_the_file_reads_everything(tmp_path: Path) -> None:
    p = tmp_path / "t.jsonl"
    p.write_bytes(line({"n": 1}) + line({"n": 2}))
    t = JsonlTailer(str(p), tail_bytes=10_000)
    assert [r["n"] for r in t.read_new().records] == [1, 2]


# -- properties ---------------------------------------------------------------------

_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=5,
)
_records = st.lists(st.dictionaries(st.text(max_size=8), _json_values, max_size=4), max_size=8)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=_records, data=st.data())
def test_property_records_read_in_any_chunking_equal_records_written(
    records: list[dict[str, object]], data: st.DataObject
) -> None:
    blob = b"".join(line(r) for r in records)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(blob)), max_size=10), label="cuts"))
    bounds = [0, *cuts, len(blob)]
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "t.jsonl"
        p.write_bytes(b"")
        t = JsonlTailer(str(p))
        got: list[dict[str, object]] = []
        for a, b in zip(bounds, bounds[1:], strict=False):
            append(p, blob[a:b])
            res = t.read_new()
            assert not res.reset and not res.missing
            got.extend(res.records)
        assert got == records
        assert (t.stats.malformed, t.stats.non_utf8, t.stats.oversized) == (0, 0, 0)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.lists(st.binary(max_size=64), max_size=6))
def test_property_garbage_never_raises_and_a_later_good_line_is_still_read(garbage: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "t.jsonl"
        p.write_bytes(line({"first": True}))
        t = JsonlTailer(str(p), max_line_bytes=48)
        assert t.read_new().records == [{"first": True}]
        for chunk in garbage:
            append(p, chunk)
            t.read_new()  # must not raise
        append(p, b"\n" + line({"last": True}))
        res = t.read_new()
        assert res.records and res.records[-1] == {"last": True}


@pytest.mark.parametrize("max_line", [16, 64])
def test_line_of_exactly_max_line_bytes_is_kept(tmp_path: Path, max_line: int) -> None:
    p = tmp_path / "t.jsonl"
    body = b'{"a":"' + b"q" * (max_line - 8) + b'"}'
    assert len(body) == max_line
    p.write_bytes(body + b"\n" + line({"n": 2}))
    t = JsonlTailer(str(p), max_line_bytes=max_line)
    res = t.read_new()
    assert res.records[0] == {"a": "q" * (max_line - 8)}
    assert t.stats.oversized == 0


# -- only regular files are opened, never blocking (issue #16) ------------------------


def _within(seconds: float, fn: Callable[[], Any], fifo: Path) -> Any:
    """``fn()`` on a thread; fails (after unblocking a reader stuck on ``fifo``) when it has
    not returned after ``seconds``."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:  # handed to the test
            out["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    hung = t.is_alive()
    while t.is_alive():
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # a writer: the reader gets EOF
        except OSError:
            pass
        t.join(0.1)
    assert not hung, f"blocked for {seconds} s opening a named pipe"
    if "error" in out:
        raise out["error"]
    return out.get("value")


def test_a_named_pipe_is_reported_missing_and_logged_once_never_waited_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    fifo = tmp_path / "t.jsonl"
    os.mkfifo(fifo)
    t = JsonlTailer(str(fifo))
    for _ in range(3):
        res = _within(10, t.read_new, fifo)
        assert res.missing and res.skipped and res.records == []
    assert [r.getMessage() for r in caplog.records] == [f"skipped {fifo}: a named pipe, not a transcript"]
    assert _within(10, lambda: read_complete_lines(str(fifo), 0), fifo) is None


def test_open_regular_refuses_a_pipe_swapped_in_between_its_stat_and_its_open(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fifo, regular = tmp_path / "t.jsonl", tmp_path / "regular.jsonl"
    os.mkfifo(fifo)
    regular.write_bytes(line({"a": 1}))
    real_stat = os.stat

    def stat_before_the_swap(path: Any, *args: Any, **kw: Any) -> os.stat_result:
        return real_stat(regular if os.fspath(path) == str(fifo) else path, *args, **kw)

    monkeypatch.setattr(os, "stat", stat_before_the_swap)
    with pytest.raises(NotRegularFile) as err:
        _within(10, lambda: open_regular(str(fifo)), fifo)
    assert err.value.kind == "a named pipe" and err.value.filename == str(fifo)
    fd = open_regular(str(regular))
    try:
        assert os.get_blocking(fd) and os.read(fd, 100) == line({"a": 1})
    finally:
        os.close(fd)


def test_skipped_files_logs_a_path_again_only_when_its_reason_changes_or_it_came_back(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    s = SkippedFiles()
    pipe = NotRegularFile("/x/y.jsonl", "a named pipe")
    assert s.report("/x/y.jsonl", pipe) and not s.report("/x/y.jsonl", pipe)
    assert s.report("/x/y.jsonl", PermissionError(13, "Permission denied"))
    s.forget("/x/y.jsonl")
    assert s.report("/x/y.jsonl", pipe)
    assert [r.getMessage() for r in caplog.records] == [
        "skipped /x/y.jsonl: a named pipe, not a transcript",
        "skipped /x/y.jsonl: not readable (permission denied)",
        "skipped /x/y.jsonl: a named pipe, not a transcript"]
