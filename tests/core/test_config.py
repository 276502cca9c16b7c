import pytest

from rag.config import Settings
from rag.errors import ConfigError


def test_defaults_need_no_configuration(tmp_path):
    s = Settings.load(env={}, toml_path=None)
    assert s.engine == "local" and s.embedder == "local" and s.chroma_url == ""


def test_precedence_override_env_toml(tmp_path):
    toml = tmp_path / "hoprag.toml"
    toml.write_text('[hoprag]\ntop_k = 3\nkb = "fromtoml"\nmax_new_tokens = 10\n')
    s = Settings.load(env={"HOPRAG_TOP_K": "7"}, toml_path=toml, max_new_tokens=20)
    assert (s.kb, s.top_k, s.max_new_tokens) == ("fromtoml", 7, 20)


def test_server_url_switches_engine():
    s = Settings.load(env={"HOPRAG_LLM_BASE_URL": "http://127.0.0.1:8000/v1", "HOPRAG_LLM_MODEL": "m"})
    assert s.engine == "openai"


@pytest.mark.parametrize(
    "env, needle",
    [
        ({"HOPRAG_ENGINE": "gpt"}, "engine='gpt' is not allowed; choose one of: local, openai, vllm"),
        ({"HOPRAG_TOP_K": "many"}, "top_k='many' is not a valid int"),
        ({"HOPRAG_TOP_K": "0"}, "top_k=0 must be at least 1"),
        ({"HOPRAG_KB": "../etc"}, "knowledge base name '../etc' is not allowed"),
        ({"HOPRAG_ENGINE": "openai"}, "needs HOPRAG_LLM_BASE_URL"),
        ({"HOPRAG_KV_CACHE": "maybe"}, "kv_cache='maybe' is not a valid bool"),
    ],
)
def test_bad_values_name_the_setting(env, needle):
    with pytest.raises(ConfigError) as err:
        Settings.load(env=env)
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_toml_key(tmp_path):
    toml = tmp_path / "hoprag.toml"
    toml.write_text("top_kk = 3\n")
    with pytest.raises(ConfigError, match="unknown setting"):
        Settings.load(env={}, toml_path=toml)


def test_replace_validates():
    with pytest.raises(ConfigError, match="reranker"):
        Settings().replace(reranker="magic")
    with pytest.raises(ConfigError, match="unknown setting"):
        Settings().replace(nope=1)
    assert Settings().replace(top_k="4").top_k == 4


def test_every_setting_is_documented_with_its_default():
    """docs/configuration.md's table has a row per Settings field, with its variable and its default."""
    import dataclasses
    from pathlib import Path

    from rag.config import Settings

    doc = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[1:-1]]
            for line in doc.splitlines() if line.startswith("| ") and line.count("|") >= 5}
    for field in dataclasses.fields(Settings):
        assert field.name in rows, f"{field.name} is not in docs/configuration.md"
        name, env, default, _ = rows[field.name]
        assert env == f"HOPRAG_{field.name.upper()}", field.name
        value = getattr(Settings(), field.name)
        if isinstance(value, bool):
            assert default == str(value).lower(), field.name
        elif isinstance(value, (int, float)) or (isinstance(value, str) and value):
            expected = {str(value), str(value).replace(str(Path.home()), "~")}
            assert default in expected or (isinstance(value, float) and float(default) == value), field.name
