"""Data: counter-seeded blocks give the same rows whatever the chunking; CSV reading."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lrtrain.config.schema import load_config
from lrtrain.data.dataset import BLOCK_ROWS
from lrtrain.data.load import load_dataset
from lrtrain.data.synthetic import block_seed, iter_synthetic, synthetic_rows
from lrtrain.errors import DataError


def test_lesson_data() -> None:
    ds = load_dataset(load_config())
    assert ds.x.shape == (100, 1) and ds.y.shape == (100, 1) and ds.x.dtype == torch.float32
    expected = torch.arange(0.0, 10.0, 0.1, dtype=torch.float64).to(torch.float32)
    assert torch.equal(ds.x[:, 0], expected)
    residual = (ds.y[:, 0] - 3 * ds.x[:, 0]).double()
    assert abs(residual.mean()) < 0.3 and 0.7 < residual.std() < 1.3  # N(0, 1) noise


def test_same_seed_same_data_other_seed_other_data() -> None:
    a = load_dataset(load_config())
    b = load_dataset(load_config())
    c = load_dataset(load_config(None, ["seed=1"]))
    assert torch.equal(a.y, b.y) and not torch.equal(a.y, c.y)


@pytest.mark.parametrize("chunk", [1, 7, 1000, BLOCK_ROWS - 1, BLOCK_ROWS, 3 * BLOCK_ROWS + 5])
def test_rows_identical_for_any_chunk_size(chunk: int) -> None:
    data = load_config(
        None, ["data.n_samples=20000", "data.x={kind: normal}", "data.true_w=[1,2]"]
    ).data
    whole_x, whole_y = synthetic_rows(data, 3, 0, data.n_samples)
    pieces = (
        list(iter_synthetic(data, 3, chunk))
        if chunk > 100
        else list(iter_synthetic(data, 3, chunk, 9000, 9100))
    )
    x = torch.cat([p[1] for p in pieces])
    y = torch.cat([p[2] for p in pieces])
    lo = pieces[0][0]
    assert torch.equal(x, whole_x[lo : lo + len(x)]) and torch.equal(y, whole_y[lo : lo + len(y)])


def test_row_range_produced_on_its_own() -> None:
    data = load_config(None, ["data.n_samples=30000", "data.x={kind: uniform}"]).data
    whole_x, whole_y = synthetic_rows(data, 0, 0, 30000)
    x, y = synthetic_rows(data, 0, 12345, 23456)
    assert torch.equal(x, whole_x[12345:23456]) and torch.equal(y, whole_y[12345:23456])


def test_loaded_dataset_matches_rows_in_both_dtypes() -> None:
    cfg = load_config(
        None, ["data.n_samples=20000", "data.x={kind: normal}", "train.dtype=float64"]
    )
    x, y = synthetic_rows(cfg.data, cfg.seed, 0, 20000)
    ds = load_dataset(cfg)
    assert torch.equal(ds.x, x) and torch.equal(ds.y, y)


def test_block_seeds_do_not_collide() -> None:
    seeds = {block_seed(s, b) for s in range(50) for b in range(200)}
    assert len(seeds) == 50 * 200


def test_true_parameters_recovered_on_large_noise_free_data() -> None:
    cfg = load_config(
        None,
        [
            "data.n_samples=500",
            "data.x={kind: uniform}",
            "data.true_w=[2,-1]",
            "data.true_b=0.5",
            "data.noise_std=0",
            "train.dtype=float64",
        ],
    )
    ds = load_dataset(cfg)
    assert torch.allclose(ds.y[:, 0], ds.x @ torch.tensor([2.0, -1.0], dtype=torch.float64) + 0.5)


def _csv(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "d.csv"
    path.write_text(text)
    return ["data.source=csv", f"data.path={path}"]


def test_csv_reads_columns(tmp_path: Path) -> None:
    over = _csv(tmp_path, "a,b,y\n1,2,3\n2,3,5\n3,5,8\n")
    ds = load_dataset(load_config(None, [*over, "train.dtype=float64"]))
    assert ds.feature_names == ["a", "b"] and ds.x.tolist() == [[1, 2], [2, 3], [3, 5]]
    assert ds.y[:, 0].tolist() == [3, 5, 8]
    ds = load_dataset(load_config(None, [*over, "data.features=[b]", "data.target=a"]))
    assert ds.feature_names == ["b"] and ds.y[:, 0].tolist() == [1, 2, 3]


@pytest.mark.parametrize(
    ("text", "extra", "fragment"),
    [
        ("a,y\n1,2\nx,3\n", [], "line 3, column 'a': 'x' is not a number"),
        ("a,y\n1,2\n2,nan\n", [], "line 3, column 'y': nan is not a finite number"),
        ("a,b\n1,2\n2,3\n", [], "no column 'y'"),
        ("a,y\n1,2\n2,3\n", ["data.features=[c]"], "no column 'c'"),
        ("", [], "the file is empty"),
        ("a,y\n1,2\n", [], "1 data row(s)"),
    ],
)
def test_csv_errors(tmp_path: Path, text: str, extra: list[str], fragment: str) -> None:
    with pytest.raises(DataError) as info:
        load_dataset(load_config(None, [*_csv(tmp_path, text), *extra]))
    assert fragment in str(info.value)


def test_csv_missing_file() -> None:
    with pytest.raises(DataError, match="not found"):
        load_dataset(load_config(None, ["data.source=csv", "data.path=nope.csv"]))


def test_standardize_and_back(tmp_path: Path) -> None:
    over = _csv(tmp_path, "a,y\n10,1\n20,3\n30,5\n")
    ds = load_dataset(load_config(None, [*over, "data.standardize=true", "train.dtype=float64"]))
    assert abs(float(ds.x.mean())) < 1e-12 and abs(float(ds.x.std(correction=0)) - 1) < 1e-12
    # y = 0.2 a - 1 is trained on as y − ȳ = 0.2·scale·ã: bias 0 on the centred target
    assert abs(float(ds.y.mean())) < 1e-12
    units = ds.standardization
    assert units is not None and units.target_mean == pytest.approx(3.0)
    w, b = units.original([0.2 * units.scale[0]], 0.0)
    assert w[0] == pytest.approx(0.2) and b == pytest.approx(-1.0)


def test_csv_with_a_byte_order_mark_and_crlf(tmp_path) -> None:
    from lrtrain.config.schema import load_config
    from lrtrain.data.load import load_dataset

    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfx,y\r\n1,2\r\n2,4.5\r\n3,6\r\n")
    ds = load_dataset(load_config(None, ["data.source=csv", f"data.path={path}"]))
    assert ds.feature_names == ["x"] and ds.target_name == "y"
    assert ds.y[:, 0].tolist() == [2.0, 4.5, 6.0]
