"""Reading a log another process is still writing: a half-written last line is left for the next read."""

from __future__ import annotations

from pathlib import Path

from meshconform.platform.local.observation import JsonLogReader


def test_a_half_written_last_line_waits_for_its_newline(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text('{"request_id": "a", "status": 200}\n{"request_id": "b", "sta')
    reader = JsonLogReader()
    assert reader.records([log, tmp_path / "absent.log"]) == [{"request_id": "a", "status": 200}]
    with log.open("a") as handle:
        handle.write('tus": 503}\n')
    assert [r["request_id"] for r in reader.records([log])] == ["a", "b"]


def test_a_reader_parses_each_line_once_and_rereads_a_replaced_file(tmp_path: Path) -> None:
    log = tmp_path / "request.log"
    reader = JsonLogReader()
    assert reader.records([log]) == []  # not written yet
    log.write_text('{"request_id": "a"}\n{"request_id": "b"')
    first = reader.records([log])
    with log.open("a") as handle:
        handle.write('}\n{"request_id": "c"}\n')
    again = reader.records([log])
    assert [r["request_id"] for r in first] == ["a"]
    assert [r["request_id"] for r in again] == ["a", "b", "c"]
    assert again[0] is first[0]  # the first line was parsed once, not again
    replacement = tmp_path / "new.log"
    replacement.write_text('{"request_id": "z"}\n')
    replacement.replace(log)  # a new file at the same path (a fresh run in the same folder)
    assert [r["request_id"] for r in reader.records([log])] == ["z"]
    log.write_text("")  # truncated in place
    assert reader.records([log]) == []
