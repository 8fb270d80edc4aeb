import subprocess
import sys

from click.testing import CliRunner

from qa_inspect.cli import main


def _commands(group, prefix=()):
    for name, cmd in group.commands.items():
        yield prefix + (name,), cmd
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, prefix + (name,))


def test_every_command_has_help_and_docs():
    runner = CliRunner()
    for path, cmd in _commands(main):
        assert cmd.help, f"{' '.join(path)} has no docstring"
        res = runner.invoke(main, [*path, "-h"])
        assert res.exit_code == 0 and "Usage" in res.output


def test_help_does_not_import_heavy_modules():
    code = ("import sys; from qa_inspect.cli import main\n"
            "try: main(['--help'])\nexcept SystemExit: pass\n"
            "print([m for m in ('faster_whisper', 'ctranslate2', 'numpy', 'av') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("[]")


def test_bad_rule_pack_fails_before_audio_with_file_and_line(tmp_path, samples):
    bad = tmp_path / "bad.yaml"
    bad.write_text("pack: {id: b}\nrules:\n  - id: a\n    kindd: required\n    match: {any: [x]}\n",
                   encoding="utf-8")
    res = CliRunner().invoke(main, ["run", str(samples / "manifest.csv"), "--rules", str(bad),
                                    "--db", str(tmp_path / "q.db"), "--out", str(tmp_path / "r")])
    assert res.exit_code == 2
    assert f"{bad}:4" in res.output and "unknown key 'kindd'" in res.output
    assert not (tmp_path / "q.db").exists()


def test_rules_validate_shipped_packs(root):
    res = CliRunner().invoke(main, ["rules", "validate", str(root / "rules/telecom_zh.yaml"),
                                    str(root / "rules/telecom_en.yaml")])
    assert res.exit_code == 0, res.output
    assert res.output.count(": ok (") == 2
