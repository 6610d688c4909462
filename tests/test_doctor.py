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
