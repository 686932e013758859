"""Every command and option of the CLI has help text, and ``--help`` loads neither requests nor keyring."""

import argparse
import subprocess
import sys

from modelprov.cli.main import COMMAND_MODULES, build_parser


def _parsers(parser, path=("modelprov",)):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                assert helps.get(name), f"{' '.join(path)} {name} has no help line in the command list"
                yield from _parsers(sub, path + (name,))


def test_every_command_and_option_has_help_text():
    seen = 0
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            seen += 1
            name = "/".join(action.option_strings) or action.dest
            assert action.help and action.help.strip(), f"{' '.join(path)}: {name} has no help text"
    assert seen > 50  # the walk reached the subcommands


def test_every_command_module_registers_a_command():
    commands = {path[1] for path, _ in _parsers(build_parser()) if len(path) == 2}
    assert {"chat", "logs", "models", "providers", "embed", "keys", "config", "doctor", "batch"} <= commands
    assert len(COMMAND_MODULES) == len(set(COMMAND_MODULES))


def test_help_and_providers_start_without_requests_or_keyring(tmp_path):
    code = (
        "import sys, io, contextlib\n"
        "from modelprov.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    rc = main(sys.argv[1:])\n"
        "print(rc, 'requests' in sys.modules, 'keyring' in sys.modules, 'ssl' in sys.modules)\n"
    )
    env = {"MODELPROV_CONFIG": str(tmp_path / "c.ini"), "MODELPROV_LOGS_PATH": str(tmp_path / "l.db"), "PATH": ""}
    for argv in (["--help"], ["chat", "--help"], ["batch", "--help"]):
        out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env, timeout=60).stdout.split()
        assert out == ["0", "False", "False", "False"], (argv, out)
    env["OPENAI_API_KEY"] = "sk-from-the-environment-0123456789"
    env["ANTHROPIC_API_KEY"] = env["OPENROUTER_API_KEY"] = env["OPENAI_API_KEY"]
    out = subprocess.run([sys.executable, "-c", code, "providers"], capture_output=True, text=True, env=env, timeout=60).stdout.split()
    assert out[:2] == ["0", "False"], out  # every key from the environment: requests is never needed
