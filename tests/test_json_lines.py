"""Reading a log another process is still writing: a half-written last line is left for the next read."""

from __future__ import annotations

from pathlib import Path

from meshconform.platform.local.observation import json_lines


def test_a_half_written_last_line_waits_for_its_newline(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text('{"request_id": "a", "status": 200}\n{"request_id": "b", "sta')
    assert json_lines([log, tmp_path / "absent.log"]) == [{"request_id": "a", "status": 200}]
    with log.open("a") as handle:
        handle.write('tus": 503}\n')
    assert [r["request_id"] for r in json_lines([log])] == ["a", "b"]
