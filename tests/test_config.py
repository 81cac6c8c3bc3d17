"""Config: schema defaults, bundled configs, overrides and every kind of bad config."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lrtrain.config.schema import Config, apply_overrides, load_config, validate
from lrtrain.config.sources import bundled_config_names
from lrtrain.engine.memory import check_memory
from lrtrain.errors import ConfigError


def _errors(raw: dict, source: str = "f.yaml") -> str:
    with pytest.raises(ConfigError) as info:
        validate(raw, source)
    return str(info.value)


def test_default_is_the_lesson() -> None:
    cfg = Config()
    assert cfg.data.n_samples == 100
    assert cfg.data.x.kind == "arange" and cfg.data.x.start == 0.0 and cfg.data.x.step == 0.1
    assert cfg.data.true_w == [3.0] and cfg.data.noise_std == 1.0
    assert cfg.optimizer.lr == 1e-3 and cfg.train.max_iter == 100
    assert cfg.train.batch_size is None and cfg.train.dtype == "float32"


def test_bundled_lecture_equals_schema_defaults_except_sweep_lrs() -> None:
    lecture = load_config("lecture").to_dict()
    default = Config().to_dict()
    assert lecture.pop("sweep")["lrs"] == [0.0005, 0.001, 0.005, 0.025, 0.028, 0.03]
    default.pop("sweep")
    assert lecture == default


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["data.x.step=0.005"],
        ["data.x.start=2.5"],
        ["data.x.start=1", "data.x.step=0.5"],
        ["data.true_w=[2.0]", "data.true_b=1"],
        ["data.x.kind=normal"],
        ["data.x.kind=normal", "data.x.std=3", "data.true_w=[1, 2]"],
        ["data.x={kind: uniform, low: 0, high: 2}"],
        ["optimizer.lr=0.028", "train.max_iter=300"],
        ["sweep.lrs=[0.01, 0.02]"],
    ],
)
def test_embedded_default_behaves_exactly_like_lecture(overrides: list[str]) -> None:
    # issue 13: `lrtrain fit data.x.step=0.005` failed on the embedded default only
    assert load_config(None, overrides) == load_config("lecture", overrides)


def test_a_key_inside_an_absent_section_starts_from_its_defaults(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("name: mine\n")  # no data section at all
    cfg = load_config(str(path), ["data.x.step=0.5"])
    assert (cfg.data.x.kind, cfg.data.x.start, cfg.data.x.step) == ("arange", 0.0, 0.5)


def test_changing_a_kind_keeps_only_the_keys_the_new_kind_takes() -> None:
    cfg = load_config(None, ["data.x.step=0.2", "data.x.kind=normal"])
    assert cfg.data.x.kind == "normal" and (cfg.data.x.mean, cfg.data.x.std) == (0.0, 1.0)
    with pytest.raises(ConfigError, match=r"data.x.std: must be > 0 \(got -1\)"):
        load_config(None, ["data.x.std=-1", "data.x.kind=normal"])


# What pydantic says in its own words; none of it may reach a user.
PYDANTIC_WORDING = (
    "Input should", "Unable to extract", "valid integer", "String should", "List should",
    "does not match any of the expected tags", "instance of", "Value error", "type=",
)  # fmt: skip


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("data.x={step: 1}", "data.x: needs a kind: one of arange, uniform, normal (got {'step'"),
        ("data.x.kind=cubic", "data.x: needs a kind: one of arange, uniform, normal (got {'kind'"),
        ("data.x=5", "data.x: must be a section of keys (a mapping) (got 5)"),
        ("data=null", "data: must be a section of keys (a mapping) (got None)"),
        ("data.n_samples=abc", "data.n_samples: must be a whole number (got 'abc')"),
        ("data.n_samples=1.5", "data.n_samples: must be a whole number (got 1.5)"),
        ("data.n_samples=1", "data.n_samples: must be ≥ 2 (got 1)"),
        ("train.max_iter=1e20", "train.max_iter: must be ≤ 1000000000 (got '1e20')"),
        ("train.batch_size=abc", "train.batch_size: must be a whole number (got 'abc')"),
        ("model.init=ones", "model.init: must be one of zeros, normal, torch (got 'ones')"),
        ("model.activation=swish",
         "model.activation: must be one of relu, tanh, gelu, sigmoid (got 'swish')"),
        ("train.dtype=float16", "train.dtype: must be one of float32, float64 (got 'float16')"),
        ("data.true_w=abc", "data.true_w: must be a list, e.g. [1.0, 2.0] (got 'abc')"),
        ("data.true_w=[]", "data.true_w: needs at least 1 item(s) (got [])"),
        ("data.standardize=maybe", "data.standardize: must be true or false (got 'maybe')"),
        ("data.target=[1]", "data.target: must be text (got [1])"),
        ("device=gpu", "device: must be auto, cpu, cuda or cuda:N (got 'gpu')"),
        ("name=a b", "name: must be letters, digits, '_', '.' or '-'"),
        ("output.plots=[loss, x]",
         "output.plots[1]: must be one of loss, contour, fit, modes (got 'x')"),
        ("output.plots=false", "output.plots: must be a list, e.g. [loss, contour] ([] for none)"),
        ("sweep.lrs=[1, .inf]", "sweep.lrs[1]: must be a finite number (not inf or nan) (got inf"),
        ("data.noise_std=.nan", "data.noise_std: must be a finite number (not inf or nan) (got n"),
        ("seed=-1", "seed: must be ≥ 0 (got -1)"),
    ],
)  # fmt: skip
def test_schema_errors_are_in_lrtrains_words(override: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    message = str(info.value)
    assert message.startswith("<default>: ") and expected in message
    assert not any(words in message for words in PYDANTIC_WORDING), message


def test_whole_numbers_may_be_written_in_e_notation() -> None:
    assert load_config(None, ["train.max_iter=1e5"]).train.max_iter == 100_000


@pytest.mark.parametrize("name", ["lecture", "multivariate", "minibatch"])
def test_bundled_configs_are_valid_and_documented(name: str) -> None:
    assert name in bundled_config_names()
    cfg = load_config(name)
    assert cfg.name == name
    text = (Path(__file__).parents[1] / "configs" / f"{name}.yaml").read_text()
    assert f"lrtrain fit -c {name}" in text.splitlines()[0:6].__str__()
    assert text.startswith("#")


def test_bundled_shapes() -> None:
    mv, mb = load_config("multivariate"), load_config("minibatch")
    assert mv.data.d == 3 and mv.data.x.kind == "uniform"
    assert mb.data.n_samples == 100_000 and mb.train.batch_size == 64
    assert mb.optimizer.momentum == 0.9


def test_config_from_path(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("name: mine\noptimizer:\n  lr: 1e-2\n")
    cfg = load_config(str(path))
    assert cfg.name == "mine" and cfg.optimizer.lr == 0.01  # YAML's 1e-2 is a string: accepted


def test_overrides_parse_yaml_values() -> None:
    cfg = load_config(
        None,
        [
            "train.max_iter=500",
            "data.true_w=[1,2]",
            "data.x={kind: normal, mean: 0, std: 1}",
            "optimizer.lr=0.01",
        ],
    )
    assert cfg.train.max_iter == 500 and cfg.data.true_w == [1.0, 2.0]
    assert cfg.data.x.kind == "normal" and cfg.optimizer.lr == 0.01


def test_mapping_override_replaces_whole_section() -> None:
    raw = {"data": {"x": {"kind": "uniform", "low": 0, "high": 2}}}
    out = apply_overrides(raw, ["data.x={kind: normal}"])
    assert out["data"]["x"] == {"kind": "normal"}
    assert raw["data"]["x"]["kind"] == "uniform"  # the input is not modified


def test_unknown_key_did_you_mean() -> None:
    msg = _errors({"optimizer": {"lrr": 0.1}})
    assert "f.yaml: optimizer.lrr: unknown key" in msg and "Did you mean 'optimizer.lr'" in msg
    msg = _errors({"data": {"x": {"kind": "uniform", "lo": 0}}})
    assert "data.x.lo" in msg and "data.x.low" in msg


def test_all_errors_reported_together() -> None:
    msg = _errors(
        {
            "optimizer": {"lr": -1},
            "train": {"max_iter": 0, "batch_size": 0},
            "data": {"n_samples": 1},
        }
    )
    for key in ("optimizer.lr", "train.max_iter", "train.batch_size", "data.n_samples"):
        assert key in msg
    assert msg.count("f.yaml:") == 4


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"optimizer": {"lr": 0}}, "optimizer.lr: expected a number > 0 or 'auto'"),
        ({"optimizer": {"lr": float("nan")}}, "optimizer.lr: expected a number > 0 or 'auto'"),
        ({"optimizer": {"lr": float("inf")}}, "optimizer.lr: expected a number > 0 or 'auto'"),
        ({"optimizer": {"lr": "fast"}}, "optimizer.lr: expected a number > 0 or 'auto'"),
        ({"optimizer": {"momentum": "auto"}}, "momentum: auto needs lr: auto as well"),
        ({"optimizer": {"lr": True}}, "optimizer.lr: expected a number"),
        ({"optimizer": {"momentum": 1.0}}, "optimizer.momentum"),
        ({"optimizer": {"nesterov": True}}, "nesterov: true needs momentum > 0"),
        ({"train": {"max_iter": 0}}, "train.max_iter"),
        ({"train": {"max_iter": 2.5}}, "train.max_iter"),
        ({"train": {"batch_size": 0}}, "train.batch_size"),
        ({"train": {"dtype": "float16"}}, "train.dtype"),
        ({"data": {"n_samples": 1}}, "data.n_samples"),
        ({"data": {"noise_std": -0.1}}, "data.noise_std"),
        ({"data": {"true_w": []}}, "data.true_w"),
        ({"data": {"true_w": [1.0, 2.0]}}, "'arange' gives one feature but true_w has 2"),
        ({"data": {"x": {"kind": "uniform", "low": 1, "high": 1}}}, "high (1.0) must be greater"),
        ({"data": {"x": {"kind": "normal", "std": 0}}}, "data.x.std"),
        ({"data": {"x": {"kind": "cubic"}}}, "data.x"),
        ({"data": {"source": "csv"}}, "needs data.path"),
        ({"data": {"stream": True}, "train": {"batch_size": 10}}, "trains full-batch"),
        ({"data": {"stream": True, "source": "csv", "path": "a.csv"}}, "CSV or arrays are held"),
        ({"device": "gpu"}, "device"),
        ({"seed": -1}, "seed"),
        ({"name": "a/b"}, "name"),
        ({"output": {"format": "jpg"}}, "output.format"),
        ({"output": {"plots": ["loss", "surface"]}}, "output.plots"),
        ({"sweep": {"lrs": [0.1, -0.1]}}, "sweep.lrs"),
    ],
)
def test_bad_values_name_the_key(raw: dict, fragment: str) -> None:
    assert fragment in _errors(raw)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a: [1, 2\n", "not valid YAML"),
        ("", "the config file is empty"),
        ("- 1\n- 2\n", "top level must be a mapping"),
        ("seed: 1\nseed: 2\n", "duplicate key 'seed'"),
        ("seed: !!python/object/apply:os.system ['true']\n", "remove the '!!' tag"),
        ("x: !!python/name:os.system\n", "remove the '!!' tag"),
    ],
)
def test_bad_yaml_files(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert fragment in str(info.value) and "bad.yaml" in str(info.value)


def test_billion_laughs_is_bounded(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 9)}]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match="alias"):
        load_config(str(path))


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("train.max_iter", "expected KEY=VALUE"),
        ("=3", "expected KEY=VALUE"),
        ("train..x=1", "not a dotted key"),
        ("seed.x=1", "seed"),
        ("optimizer.lrr=1", "Did you mean 'optimizer.lr'"),
        ("optimizer.lr=[1", "not valid YAML"),
    ],
)
def test_bad_overrides(override: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert fragment in str(info.value)


def test_unknown_config_name_suggests() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'lecture'"):
        load_config("lectur")


@pytest.mark.parametrize("name", ["lecture", "multivariate", "minibatch", "diabetes", "optimizers"])
def test_resolved_yaml_is_one_key_per_line_and_reloads(tmp_path: Path, name: str) -> None:
    # issue 13: flow mappings wrapped mid-entry ("log_every:\n1,")
    cfg = load_config(name, ["train.target_gap=1e-6"])
    text = cfg.to_yaml()
    for line in text.splitlines():
        key, colon, value = line.strip().partition(":")
        assert colon and key.replace("_", "").isalnum(), line  # "key:" or "key: value"
        assert "{" not in value, line  # no flow mappings; short lists stay inline
    assert "  x:\n    kind: " in text and "  true_w: [" in text
    path = tmp_path / "resolved.yaml"
    path.write_text(text)
    assert load_config(str(path)) == cfg


def test_bundled_configs_are_block_style() -> None:
    for name in bundled_config_names():
        text = (Path(__file__).parents[1] / "configs" / f"{name}.yaml").read_text()
        assert not [ln for ln in text.splitlines() if "{" in ln and not ln.startswith("#")]


def test_resolved_yaml_round_trips(tmp_path: Path) -> None:
    cfg = load_config("multivariate", ["optimizer.momentum=0.5"])
    path = tmp_path / "resolved.yaml"
    path.write_text(cfg.to_yaml())
    assert load_config(str(path)) == cfg
    assert yaml.safe_load(cfg.to_yaml())["optimizer"]["momentum"] == 0.5


def test_memory_refused_before_allocating() -> None:
    cfg = load_config(
        None,
        ["data.n_samples=1000000000", "data.x={kind: normal}", "data.true_w=[1,2,3,4,5,6,7,8]"],
    )
    with pytest.raises(ConfigError, match=r"needs .*GiB"):
        check_memory(cfg, available_bytes=8 * 2**30)
    check_memory(load_config(), available_bytes=8 * 2**30)


def test_a_width_whose_analysis_cannot_fit_is_refused_before_allocating() -> None:
    """p × p float64 matrices at 9 999 features: ~8 GB, refused on a 4 GB machine with the
    reason (and not for the rows, which are small here)."""
    wide = f"data.true_w={[1.0] * 9999}"
    cfg = load_config(None, ["data.n_samples=100", "data.x={kind: normal}", wide])
    with pytest.raises(ConfigError, match=r"9,999 features make the analysis hold float64 p × p"):
        check_memory(cfg, available_bytes=4 * 2**30)
    check_memory(cfg, available_bytes=64 * 2**30)


def test_no_value_of_any_key_gets_pydantic_wording() -> None:
    from lrtrain.config.reference import field_docs

    values = ["null", "true", "abc", "-1", "0", "1.5", "1e400", "[]", "[1, x]", "{}", "{a: 1}",
              ".nan", "[[1]]", "'1'"]  # fmt: skip
    for key in field_docs():
        for value in values:
            try:
                load_config(None, [f"{key}={value}"])
            except ConfigError as exc:
                message = str(exc)
                assert not any(words in message for words in PYDANTIC_WORDING), message
                assert message.startswith("<default>: "), message
