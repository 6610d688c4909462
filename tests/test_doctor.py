from click.testing import CliRunner

from bot.cli import main


def test_doctor_reports_toolchain_and_cache(toolchain):
    result = CliRunner().invoke(main, ["doctor", "--method", "gguf"])
    assert result.exit_code == 0, result.output
    assert str(toolchain.bin_dir) in result.output
    assert "llama-cpp-python" in result.output


def test_doctor_fails_clearly_without_gpu_or_disk():
    result = CliRunner().invoke(main, ["doctor", "--method", "nf4", "--min-free-gb", "1e9"])
    assert result.exit_code == 1
    assert "no CUDA GPU visible; fix:" in result.output
    assert "GB required; fix:" in result.output


def test_every_verb_has_help():
    for name in main.commands:
        result = CliRunner().invoke(main, [name, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output, name


def test_doctor_says_whether_the_make_steps_sandbox_is_in_place(monkeypatch, tmp_path):
    """Self-hosted runners check it (`--isolation bwrap`); elsewhere it is only reported."""
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on it
    reported = CliRunner().invoke(main, ["doctor"])
    assert reported.exit_code == 0 and "sandbox" in reported.output
    assert "not installed (bubblewrap)" in reported.output
    required = CliRunner().invoke(main, ["doctor", "--isolation", "bwrap"])
    assert required.exit_code == 1
    assert "error: bubblewrap (bwrap) is not installed; fix: install bubblewrap " \
           "(Debian/Ubuntu: apt-get install bubblewrap" in required.output
