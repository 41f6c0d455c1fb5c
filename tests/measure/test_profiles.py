"""Device profiles: every shipped one loads; bad ones say the file, the key and the rule."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from autosq.errors import ProfileError
from autosq.measure.profiles import ENV_VAR, list_profiles, load_profile, parse_profile

Cli = Callable[..., tuple[int, str, str]]
SHIPPED = sorted(p.stem for p in (Path(__file__).parents[2] / "device_profiles").glob("*.toml"))

GOOD = """
name = "mydev"
description = "a test board"
[budget]
max_mb = 2.0
max_ms = 30
[runtime]
threads = 2
[latency]
source = "estimated"
[latency.calibration]
reference = "squeezenet1_1"
device_ms = 40.0
source = "my own stopwatch"
"""


def test_the_required_devices_ship() -> None:
    assert {"host", "rpi3b", "rpi4", "rpi5", "jetson-nano", "pixel4"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_profile_loads(name: str) -> None:
    p = load_profile(name)
    assert p.name == name and p.max_mb > 0 and p.threads >= 1
    if p.latency_source == "estimated":
        assert p.calibration is not None and p.calibration.source and p.calibration.device_ms > 0


def test_profiles_ship_inside_the_package() -> None:
    from importlib import resources

    shipped = resources.files("autosq").joinpath("device_profiles")
    assert sorted(f.name[:-5] for f in shipped.iterdir() if f.name.endswith(".toml")) == SHIPPED


def test_unknown_device_lists_the_known_ones() -> None:
    with pytest.raises(ProfileError, match=r"unknown device 'rpi9'; known devices: .*rpi4"):
        load_profile("rpi9")


def test_user_folder_wins_and_env_var_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "rpi4.toml").write_text(GOOD.replace('"mydev"', '"rpi4"'))
    (tmp_path / "mydev.toml").write_text(GOOD)
    assert load_profile("rpi4", [tmp_path]).max_mb == 2.0
    assert load_profile("rpi4").max_mb == 5.0
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert load_profile("rpi4").max_mb == 2.0
    assert "mydev" in {p.name for p in list_profiles()}


def test_profile_by_path(tmp_path: Path) -> None:
    f = tmp_path / "board.toml"
    f.write_text(GOOD)
    assert load_profile(str(f)).name == "mydev"
    with pytest.raises(ProfileError, match="does not exist"):
        load_profile(str(tmp_path / "nope.toml"))


def test_missing_profiles_folder() -> None:
    with pytest.raises(ProfileError, match="profiles folder /no/such/dir does not exist"):
        load_profile("rpi4", ["/no/such/dir"])


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("max_mb = 2.0", "max_mb = -2.0", "key 'budget.max_mb' must be > 0; got -2.0"),
        ("max_mb = 2.0", 'max_mb = "big"', "key 'budget.max_mb' must be a number"),
        ("max_mb = 2.0\n", "", "key 'budget.max_mb' is missing"),
        ("threads = 2", "threads = 2.5", "key 'runtime.threads' must be an integer; got 2.5"),
        (
            'source = "estimated"',
            'source = "guessed"',
            "key 'latency.source' must be one of measured, agent, estimated; got 'guessed'",
        ),
        (
            'reference = "squeezenet1_1"',
            'reference = "resnet"',
            "key 'latency.calibration.reference' must be one of",
        ),
        ("device_ms = 40.0", "device_ms = 0", "key 'latency.calibration.device_ms' must be > 0"),
        ('source = "my own stopwatch"', "", "key 'latency.calibration.source' is missing"),
        ("[runtime]", "colour = 1\n[runtime]", "key 'budget.colour' is not a known key"),
        (
            "[runtime]",
            '[runtime]\ngraph_optimization = "max"',
            "key 'runtime.graph_optimization' must be one of disable, basic, extended, all",
        ),
        ('name = "mydev"', 'name = "my dev"', "key 'name' must be a non-empty name"),
        ("max_ms = 30", "max_ms = [", "not valid TOML"),
        ('source = "estimated"', 'source = "estimated"\ntoken_env = "MY TOKEN"',
         "key 'latency.token_env' must be an environment variable's name"),
    ],
)
def test_bad_profiles_name_file_key_and_rule(old: str, new: str, message: str) -> None:
    assert old in GOOD
    with pytest.raises(ProfileError) as info:
        parse_profile(GOOD.replace(old, new, 1), "board.toml")
    assert str(info.value).startswith("board.toml: ")
    assert message in str(info.value)


def test_estimated_needs_calibration_and_agent_needs_url() -> None:
    no_cal = GOOD.split("[latency.calibration]")[0]
    with pytest.raises(ProfileError, match=r"key 'latency\.calibration' is missing"):
        parse_profile(no_cal, "x.toml")
    agent = no_cal.replace('"estimated"', '"agent"')
    with pytest.raises(ProfileError, match=r"key 'latency\.url' is required"):
        parse_profile(agent, "x.toml")
    with pytest.raises(ProfileError, match="must start with http"):
        parse_profile(agent + 'url = "ftp://x"\n', "x.toml")
    ok = parse_profile(agent + 'url = "http://127.0.0.1:8765"\n', "x.toml")
    assert ok.latency_source == "agent" and ok.agent_url == "http://127.0.0.1:8765"


def test_agent_token_variable_and_ca_file(tmp_path: Path) -> None:
    text = ('name = "pi"\n[budget]\nmax_mb = 1\n[latency]\nsource = "agent"\n'
            'url = "https://pi:8765"\ntoken_env = "PI_TOKEN"\nca_file = "certs/pi.pem"\n')
    p = parse_profile(text, str(tmp_path / "pi.toml"))
    assert p.agent_token_env == "PI_TOKEN"
    assert p.agent_ca_file == str(tmp_path / "certs" / "pi.pem")  # relative to the profile
    assert parse_profile(text.replace('token_env = "PI_TOKEN"\n', ""),
                         "pi.toml").agent_token_env == "AUTOSQ_AGENT_TOKEN"


def test_name_must_match_file(tmp_path: Path) -> None:
    (tmp_path / "other.toml").write_text(GOOD)
    with pytest.raises(ProfileError, match="must match the file name 'other'"):
        load_profile("other", [tmp_path])


def test_devices_cli(cli: Cli, tmp_path: Path) -> None:
    code, out, _ = cli("devices")
    assert code == 0 and "rpi4" in out and "estimated" in out
    code, out, _ = cli("devices", "--json")
    rows = json.loads(out)
    assert {r["name"] for r in rows} >= set(SHIPPED)
    assert all({"name", "latency_source", "max_mb", "max_ms", "ram_mb"} <= set(r) for r in rows)
    (tmp_path / "broken.toml").write_text("name = 'broken'\n")
    code, _, err = cli("devices", "--profiles", str(tmp_path))
    assert code == 2 and err.startswith("autosq: error: ") and "broken.toml" in err
    assert len(err.strip().splitlines()) == 1
