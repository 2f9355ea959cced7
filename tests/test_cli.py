"""Command-line surface: help for every command, data synth/check, the demo (short)."""

from __future__ import annotations

import json

import pytest

from pixtrans.cli import build_parser, main


def test_every_command_has_help(capsys):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "cmd")
    for name in ("data", "train", "test", "translate", "bench", "demo"):
        assert name in sub.choices
        with pytest.raises(SystemExit) as e:
            main([name, "--help"])
        assert e.value.code == 0
    assert "--resume" in capsys.readouterr().out


def test_synth_and_check(tmp_path, capsys):
    assert main(["data", "synth", "--out", str(tmp_path / "d"), "--n", "4", "--size", "48x32", "--seed", "3"]) == 0
    assert len(list((tmp_path / "d" / "train_img").iterdir())) == 4
    cfg = "configs/pix2pix_synth.yaml"
    assert main(["data", "check", cfg, "--data", str(tmp_path / "d")]) == 0
    (tmp_path / "d" / "train_label" / "train_00001.png").write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    capsys.readouterr()
    assert main(["data", "check", cfg, "--data", str(tmp_path / "d")]) == 2
    out = capsys.readouterr().out
    assert "train_00001.png" in out and "1 bad" in out


@pytest.mark.slow
def test_demo_beats_untrained(tmp_path):
    from pixtrans.demo import run_demo

    s = run_demo(tmp_path / "demo", steps=200, size=64, n=8, ngf=16)
    assert (tmp_path / "demo" / "report" / "index.html").is_file()
    assert s["trained"]["psnr"] > s["untrained"]["psnr"] + 1.0
    assert json.loads((tmp_path / "demo" / "summary.json").read_text())["steps"] == 200
