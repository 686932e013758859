"""``modelprov config``: path/show/get/set/unset, provenance, typos refused, invalid values marked not fatal."""

import json

from modelprov.cli.main import main

SENTINEL = "sk-proj-SENTINEL0123456789abcdef"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def config_file(tmp_path, text=None):
    path = tmp_path / "modelprov-config.ini"
    if text is not None:
        path.write_text(text)
        path.chmod(0o600)
    return path


def test_path(capsys, tmp_path):
    assert run(capsys, "config", "path") == (0, f"{config_file(tmp_path)}\n", "")


def test_typos_refused_with_did_you_mean(capsys, tmp_path):
    code, out, err = run(capsys, "config", "set", "defualt_model", "mock/echo")
    assert code == 2 and out == "" and "unknown config key 'defualt_model'" in err and "did you mean 'default_model'?" in err.lower()
    assert not config_file(tmp_path).exists()
    code, _, err = run(capsys, "config", "get", "nosuchkey")
    assert code == 2 and "unknown config key 'nosuchkey'" in err
    code, _, err = run(capsys, "config", "set", "provider.openai.timout", "3")
    assert code == 2 and "did you mean 'provider.openai.timeout'?" in err.lower()
    code, _, err = run(capsys, "config", "unset", "provider.opnai.timeout")
    assert code == 2 and "unknown provider 'opnai'" in err and "did you mean 'openai'?" in err.lower()
    code, _, err = run(capsys, "config", "get", "provders.openai.timeout")
    assert code == 2 and "did you mean 'provider.openai.timeout'?" in err.lower()


def test_set_get_unset_round_trip(capsys, tmp_path):
    path = config_file(tmp_path)
    assert run(capsys, "config", "set", "provider.openai.timeout", "30") == (0, f"set provider.openai.timeout in {path}\n", "")
    assert run(capsys, "config", "get", "provider.openai.timeout")[1] == "30\n"
    assert run(capsys, "config", "set", "timeout", "12.5")[0] == 0
    assert run(capsys, "config", "get", "timeout")[1] == "12.5\n"
    assert run(capsys, "config", "set", "aliases.fast", "mock/echo")[0] == 0
    assert run(capsys, "chat", "-m", "fast", "alias")[1] == "alias\n"
    assert run(capsys, "config", "get", "aliases.fast")[1] == "mock/echo\n"
    assert run(capsys, "config", "set", "provider.openai.header.X-Team", "ml")[0] == 0
    assert run(capsys, "config", "get", "provider.openai.header.X-Team")[1] == "ml\n"
    assert run(capsys, "config", "unset", "provider.openai.timeout") == (0, f"removed provider.openai.timeout from {path}\n", "")
    assert run(capsys, "config", "unset", "provider.openai.timeout")[1] == f"provider.openai.timeout is not set in {path}: nothing to remove\n"
    assert run(capsys, "config", "get", "provider.openai.timeout")[1] == "12.5\n"  # inherited from [modelprov]
    run(capsys, "config", "unset", "timeout")
    assert run(capsys, "config", "get", "provider.openai.timeout") == (0, "", "")  # known key, not set: nothing printed


def test_bad_values_refused_before_writing(capsys, tmp_path):
    path = config_file(tmp_path)
    code, _, err = run(capsys, "config", "set", "provider.openai.timeout", "-1")
    assert code == 2 and "expected a number of seconds greater than 0" in err and not path.exists()
    code, _, err = run(capsys, "config", "set", "provider.openai.base_url", "ftp://x")
    assert code == 2 and "expected a URL starting with http:// or https://" in err and not path.exists()
    code, _, err = run(capsys, "config", "set", "provider.vllm.type", "openai_compat")
    assert code == 2 and "did you mean 'openai_compatible'?" in err.lower() and not path.exists()
    code, _, err = run(capsys, "config", "set", "default_model", "gpt-5.4-mini")
    assert code == 2 and "expected 'provider/model'" in err
    code, _, err = run(capsys, "config", "set", "prices.openai/gpt-5.4-mini", "input=-1 output=2")
    assert code == 2 and "input must be a number >= 0" in err and not path.exists()


def test_secrets_never_set_or_printed(capsys, tmp_path, monkeypatch):
    code, _, err = run(capsys, "config", "set", "provider.openai.api_key", SENTINEL)
    assert code == 2 and "modelprov keys set openai" in err and SENTINEL not in err
    code, _, err = run(capsys, "config", "set", "provider.openai.header.Authorization", "Bearer " + SENTINEL)
    assert code == 2 and SENTINEL not in err
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL)
    code, _, err = run(capsys, "config", "get", "provider.openai.api_key")
    assert code == 2 and "modelprov keys get openai" in err
    code, out, err = run(capsys, "config", "show", "openai")
    assert code == 0 and SENTINEL not in out + err and "api_key = sk-...ef    (env:OPENAI_API_KEY)" in out


def test_new_instance_type_first(capsys, tmp_path):
    code, _, err = run(capsys, "config", "set", "provider.vllm.base_url", "http://localhost:8000/v1")
    assert code == 2 and "config set provider.vllm.type openai_compatible" in err
    assert run(capsys, "config", "set", "provider.vllm.type", "openai_compatible")[0] == 0
    assert run(capsys, "config", "set", "provider.vllm.base_url", "http://localhost:8000/v1")[0] == 0
    assert run(capsys, "config", "get", "provider.vllm.base_url")[1] == "http://localhost:8000/v1\n"


def test_show_lists_every_value_with_its_source(capsys, tmp_path, monkeypatch):
    path = config_file(tmp_path, "[modelprov]\ndefault_model = mock/echo\ntimeout = 20\n[aliases]\nfast = mock/echo\n"
                                 "[prices]\nopenai/gpt-5.4-mini = input=0.25 output=2.00 cached=0.025\n")
    monkeypatch.setenv("MODELPROV_OPENAI_RPM", "60")
    code, out, _ = run(capsys, "config", "show", "openai")
    assert code == 0
    assert f"  default_model = mock/echo    (file:{path} [modelprov])" in out
    assert "  connect_timeout = 5    (default)" in out
    assert f"  fast = mock/echo    (file:{path} [aliases])" in out
    assert "  openai/gpt-5.4-mini = input=0.25 output=2 cached=0.025" in out
    assert "[provider:openai]" in out and "  rpm = 60    (env:MODELPROV_OPENAI_RPM)" in out
    assert f"  timeout = 20    (file:{path} [modelprov])" in out.split("[provider:openai]")[1]  # inherited from [modelprov]
    data = json.loads(run(capsys, "config", "show", "openai", "--json")[1])
    assert data["providers"]["openai"]["rpm"] == {"value": 60.0, "source": "env:MODELPROV_OPENAI_RPM"}
    assert data["modelprov"]["default_model"]["value"] == "mock/echo" and data["file"] == {"path": str(path), "exists": True}


def test_one_bad_value_does_not_hide_the_rest(capsys, tmp_path):
    config_file(tmp_path, "[modelprov]\npool_size = many\n[provider:openai]\nbase_url = http://bad url\ntimeout = 9\n"
                          "[provider:vllm]\ntype = openai_compat\n[prices]\nbad = input=1 output=2\n")
    code, out, err = run(capsys, "config", "show")
    assert code == 2 and err.startswith("modelprov: error: invalid setting modelprov.pool_size: ") and err.count("\n") == 1
    assert "and 4 more, marked above" in err  # openai inherits the bad pool_size too
    assert "  pool_size = invalid: invalid pool_size 'many'" in out
    assert "  base_url = invalid: invalid base_url 'http://bad url'" in out and "line 4" in out
    assert "  timeout = 9    (file:" in out and "  read_timeout = 600    (default)" in out
    assert "[provider:vllm]" in out and "invalid: unknown provider type 'openai_compat'" in out
    assert "  bad = invalid: invalid price key 'bad'" in out
    code, _, err = run(capsys, "config", "get", "provider.openai.base_url")
    assert code == 2 and "is invalid" in err


def test_show_all_and_group_help(capsys):
    code, out, _ = run(capsys, "config", "show")
    assert code == 0 and "no provider is configured" in out and "[provider:" not in out
    code, out, _ = run(capsys, "config", "show", "--all")
    assert "[provider:anthropic]" in out and "[provider:mock]" in out
    assert run(capsys, "config", "show", "nosuch")[0] == 2
    code, _, err = run(capsys, "config")
    assert code == 2 and "unset" in err


def test_env_override_warned_on_set(capsys, monkeypatch):
    monkeypatch.setenv("MODELPROV_MODEL", "mock/scripted")
    code, _, err = run(capsys, "config", "set", "default_model", "mock/echo")
    assert code == 0 and "MODELPROV_MODEL is set in the environment and wins over the config file" in err


def test_declared_option_keys(capsys, tmp_path):
    assert run(capsys, "config", "set", "provider.anthropic.api_version", "2023-06-01")[0] == 0  # from option_env
    assert run(capsys, "config", "get", "provider.anthropic.api_version")[1] == "2023-06-01\n"
