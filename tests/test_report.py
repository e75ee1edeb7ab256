"""The report CLI on results.json files written here, checking the numbers in its tables."""

import json

import matplotlib.image
import pytest

from hsic_jax import report

CLASSES = ["Water", "Hippo grass", "Reeds"]


def _write_run(root, name, **overrides):
    run = {"dataset": "botswana", "method": "lora", "config": {"seed": 0}, "class_names": CLASSES,
           "oa": 0.9, "aa": 0.85, "kappa": 0.88, "per_class": [1.0, 0.75, float("nan")],
           "confusion": [[4, 0, 0], [1, 3, 0], [0, 0, 0]], "trainable_params": 159_760,
           "total_params": 85_300_000, "adapter_bytes": 655_360, "train_seconds": 12.0,
           "split": {"rows": [{"class": c, "train": 30, "test": 10} for c in CLASSES]}}
    run.update(overrides)
    workdir = root / name
    workdir.mkdir()
    (workdir / "results.json").write_text(json.dumps(run))
    return str(workdir)


@pytest.fixture
def workdirs(tmp_path):
    seeds = [{"seed": s, "oa": oa, "aa": 0.9, "kappa": 0.9, "per_class": [1.0, 0.9, 0.8]}
             for s, oa in enumerate((0.95, 0.97))]
    return [
        _write_run(tmp_path, "kp", method="krona_plus", oa=0.96, oa_std=0.01, aa=0.9, aa_std=0.0,
                   kappa=0.955, kappa_std=0.0125, per_class=[1.0, 0.9, 0.8],
                   per_class_std=[0.0, 0.05, 0.1], seeds=seeds, trainable_params=49_168,
                   adapter_bytes=209_715),
        _write_run(tmp_path, "lora"),
        _write_run(tmp_path, "ip_lp", dataset="indian_pines", method="linear_probe",
                   class_names=["Alfalfa", "Corn"], per_class=[0.5, 0.25], oa=0.3, aa=0.375,
                   kappa=0.2, trainable_params=12_304, adapter_bytes=41_943),
    ]


def _table(text: str, title_start: str) -> dict[str, dict[str, str]]:
    """Parses the plain-text table whose title starts with `title_start`: {row: {column: cell}}."""
    block = next(b for b in text.split("\n\n") if b.startswith(title_start))
    _title, header, _rule, *rows = block.splitlines()

    def cells(line):                        # columns are separated by at least two spaces
        return [c.strip() for c in line.split("  ") if c.strip()]
    return {r[0]: dict(zip(cells(header)[1:], r[1:])) for r in map(cells, rows)}


def test_plain_text_report(workdirs, tmp_path, capsys):
    assert report.main([*workdirs, "--out", str(tmp_path / "out")]) == 0
    text = capsys.readouterr().out
    assert text.index("Indian Pines") < text.index("Botswana") < text.index("Adapter storage")

    bw = _table(text, "Botswana")
    assert list(bw["OA (%)"]) == ["LoRA", "KronA+"]                     # the paper's order
    assert bw["OA (%)"] == {"LoRA": "90.00", "KronA+": "96.00 ± 1.00"}
    assert bw["AA (%)"] == {"LoRA": "85.00", "KronA+": "90.00 ± 0.00"}
    assert bw["Kappa (%)"] == {"LoRA": "88.00", "KronA+": "95.50 ± 1.25"}
    assert bw["1 Water"] == {"LoRA": "100.00", "KronA+": "100.00 ± 0.00"}
    assert bw["2 Hippo grass"] == {"LoRA": "75.00", "KronA+": "90.00 ± 5.00"}
    assert bw["3 Reeds"] == {"LoRA": "–", "KronA+": "80.00 ± 10.00"}  # no test pixels: NaN
    assert bw["#Params (M)"] == {"LoRA": "0.160", "KronA+": "0.049"}
    assert bw["Seeds"] == {"LoRA": "1", "KronA+": "2"}

    ip = _table(text, "Indian Pines")
    assert ip["2 Corn"] == {"LP": "25.00"} and ip["OA (%)"] == {"LP": "30.00"}

    storage = _table(text, "Adapter storage")
    assert storage["Botswana"] == {"LP": "–", "LoRA": "0.62", "KronA+": "0.20"}
    assert storage["Indian Pines"] == {"LP": "0.04", "LoRA": "–", "KronA+": "–"}
    assert storage["Mean AS (MiB)"] == {"LP": "0.04", "LoRA": "0.62", "KronA+": "0.20"}

    assert matplotlib.image.imread(tmp_path / "out" / "oa_vs_params.png").ndim == 3


def test_storage_mean_over_datasets(tmp_path):
    runs = [report.load_run(_write_run(tmp_path, d, dataset=d, adapter_bytes=b))
            for d, b in (("botswana", 2**20), ("pavia_university", 3 * 2**20))]
    header, rows = report.storage_table(runs)
    assert header == ["Dataset", "LoRA"]
    assert rows == [["Pavia University", "3.00"], ["Botswana", "1.00"], ["Mean AS (MiB)", "2.00"]]


def test_markdown_report(workdirs, tmp_path, capsys):
    assert report.main([*workdirs, "--markdown", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "| Class | LoRA | KronA+ |" in text
    assert "| OA (%) | 90.00 | 96.00 ± 1.00 |" in text
    assert "| Mean AS (MiB) | 0.04 | 0.62 | 0.20 |" in text


def test_unknown_method_comes_after_the_paper_methods(tmp_path):
    runs = [report.load_run(_write_run(tmp_path, m, method=m)) for m in ("dora", "fft", "bitfit")]
    header, _ = report.dataset_table(runs)
    assert header == ["Class", "BitFit", "FFT", "dora"]


@pytest.mark.parametrize("content, match", [
    (None, r"results.json: not found"),
    ("{not json", r"results.json: not valid JSON"),
    ('{"dataset": "botswana", "method": "lora"}', r"results.json: missing key\(s\) class_names, oa, aa"),
])
def test_bad_workdirs(tmp_path, capsys, content, match):
    workdir = tmp_path / "run"
    workdir.mkdir()
    if content is not None:
        (workdir / "results.json").write_text(content)
    with pytest.raises(report.ReportError, match=match):
        report.load_run(str(workdir))
    assert report.main([str(workdir), "--out", str(tmp_path)]) == 2
    assert str(workdir / "results.json") in capsys.readouterr().err


@pytest.mark.parametrize("overrides, match", [
    ({"per_class": [1.0, 0.5]}, r"per_class must be a list of 3 numbers"),
    ({"oa": "high"}, r"oa must be a number; got 'high'"),
    ({"per_class_std": [0.1, "x", 0.0]}, r"per_class_std must be a number"),
])
def test_malformed_values(tmp_path, overrides, match):
    with pytest.raises(report.ReportError, match=match):
        report.load_run(_write_run(tmp_path, "run", **overrides))


def test_two_runs_of_the_same_cell_are_an_error(tmp_path):
    runs = [report.load_run(_write_run(tmp_path, n)) for n in ("a", "b")]
    with pytest.raises(report.ReportError, match=r"a/results.json and .*b/results.json are both botswana/lora"):
        report.report(runs)
