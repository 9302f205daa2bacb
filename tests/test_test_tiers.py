"""`make test`'s two runs: the last lines of the log say what failed in either run."""

from __future__ import annotations

import textwrap

from lakehouse_dev import test_tiers


def test_each_runs_failures_are_repeated_at_the_end_and_the_exit_code_is_the_failing_runs(
    tmp_path, monkeypatch, capsys
):
    (tmp_path / "test_two.py").write_text(
        textwrap.dedent(
            """
            import pytest

            def test_passes():
                pass

            @pytest.mark.first
            def test_fails_in_the_first_run():
                assert 1 == 2
            """
        )
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    first: the first tier\n")
    monkeypatch.setattr(
        test_tiers, "TIERS", {"one": ("first", {}, 0), "two": ("not first", {}, 5)}
    )

    code = test_tiers.main([str(tmp_path), "-q", "-p", "no:cacheprovider", "-rfE"])

    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert lines[-2].startswith("test tiers: one: FAILED "), lines[-5:]
    assert lines[-2].endswith("test_two.py::test_fails_in_the_first_run - assert 1 == 2"), lines[-2]
    assert lines[-1].startswith("test tiers: one exit 1, two exit 0 in "), lines[-1]
    assert not any(line.startswith("test tiers: two:") for line in lines)
