"""The report CLI on results.json files written here, checking the numbers in its tables."""

import io
import json
import warnings

import matplotlib.image
import pytest
from PIL import Image, PngImagePlugin
from scipy import stats

from hsic_jax import report
from hsic_jax.evaluation.maps import save_plot_oa_vs_params

CLASSES = ["Water", "Hippo grass", "Reeds"]
PROTOCOL = {"split": "per_class", "spatially_disjoint": False, "window": 15, "train": 695, "val": 0,
            "test": 9554, "fit_on": "scene", "select": "last",
            "summary": "30 training pixels per class, statistics fitted on the scene"}


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


def _seeds(oa_by_seed: dict[int, float]) -> list[dict]:
    """The `seeds` entries of a results.json with these OAs."""
    return [{"seed": s, "oa": oa, "aa": 0.9, "kappa": 0.9, "per_class": [1.0, 0.9, 0.8],
             "leakage": {"test": 0.5, "val": None}} for s, oa in oa_by_seed.items()]


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
    for row in ("Split", "Window (px)", "Train / val / test px", "Fit on", "Selection",
                "Test px in a train window (%)"):                   # results.json without protocol
        assert bw[row] == {"LoRA": "–", "KronA+": "–"}
    assert "paired comparison" not in text and "not compared" not in text  # 1 common seed at most

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


def test_undefined_kappa_written_as_null_is_shown_as_missing(tmp_path):
    """The loop writes null for a kappa that is NaN (every pixel predicted as one class)."""
    run = report.load_run(_write_run(tmp_path, "run", kappa=None, kappa_std=None))
    _, rows = report.dataset_table([run])
    assert dict((r[0], r[1]) for r in rows)["Kappa (%)"] == report.MISSING
    with pytest.raises(report.ReportError, match=r"oa must be a number; got None"):
        report.load_run(_write_run(tmp_path, "bad", oa=None))


def test_two_runs_of_the_same_cell_are_an_error(tmp_path):
    runs = [report.load_run(_write_run(tmp_path, n)) for n in ("a", "b")]
    with pytest.raises(report.ReportError, match=r"a/results.json and .*b/results.json are both "
                                                 r"botswana/spectralgpt/lora"):
        report.report(runs)


def test_protocol_rows(tmp_path, capsys):
    given = {**PROTOCOL, "split": "given", "window": 9, "train": 2832, "val": 0, "test": 12197}
    workdirs = [
        _write_run(tmp_path, "lora", protocol=PROTOCOL,
                   leakage={"window": 15, "test": 0.991, "val": None}),
        _write_run(tmp_path, "kp", method="krona_plus",
                   leakage={"window": 15, "test": 0.0, "val": 0.0},
                   protocol={**PROTOCOL, "spatially_disjoint": True, "val": 120, "test": 3100,
                             "fit_on": "train", "select": "best_val"}),
        _write_run(tmp_path, "fft", method="fft", protocol=given,
                   leakage={"window": 9, "test": 0.123456, "val": None}),
        _write_run(tmp_path, "bitfit", method="bitfit"),                # written before these keys
    ]
    assert report.main([*workdirs, "--out", str(tmp_path)]) == 0
    bw = _table(capsys.readouterr().out, "Botswana")
    assert bw["Split"] == {"BitFit": "–", "LoRA": "per class", "KronA+": "per class, disjoint",
                           "FFT": "given maps"}
    assert bw["Window (px)"] == {"BitFit": "–", "LoRA": "15", "KronA+": "15", "FFT": "9"}
    assert bw["Train / val / test px"] == {"BitFit": "–", "LoRA": "695 / 0 / 9554",
                                           "KronA+": "695 / 120 / 3100", "FFT": "2832 / 0 / 12197"}
    assert bw["Fit on"] == {"BitFit": "–", "LoRA": "scene", "KronA+": "train", "FFT": "scene"}
    assert bw["Selection"] == {"BitFit": "–", "LoRA": "last", "KronA+": "best val", "FFT": "last"}
    assert bw["Test px in a train window (%)"] == {"BitFit": "–", "LoRA": "99.10", "KronA+": "0.00",
                                                   "FFT": "12.35"}


def test_paired_comparison_against_scipy():
    a, b = [0.95, 0.96, 0.97], [0.93, 0.95, 0.94]
    c = report.paired_comparison({0: a[0], 1: a[1], 2: a[2], 7: 0.1},   # seed 7 only in a,
                                 {9: 0.99, 2: b[2], 1: b[1], 0: b[0]})   # seed 9 only in b
    assert c["seeds"] == [0, 1, 2] and c["n"] == 3
    assert c["mean"] == pytest.approx(0.02) and c["std"] == pytest.approx(0.01)   # of 2, 1, 3 pp
    assert c["t_p"] == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert c["wilcoxon_p"] == pytest.approx(stats.wilcoxon(a, b).pvalue)
    assert 0.07 < c["t_p"] < 0.08 and c["wilcoxon_p"] == pytest.approx(0.25)


def test_paired_comparison_table(tmp_path, capsys):
    a, b = [0.95, 0.96, 0.97], [0.93, 0.95, 0.94]
    # KronA+ has a seed 5 that LoRA lacks: paired with nothing, it must not change the numbers.
    lora = _write_run(tmp_path, "lora", protocol=PROTOCOL, seeds=_seeds(dict(enumerate(b))))
    kp = _write_run(tmp_path, "kp", method="krona_plus", protocol=PROTOCOL,
                    seeds=_seeds({**dict(enumerate(a)), 5: 0.5}))
    assert report.main([lora, kp, "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    table = _table(text, "Botswana: paired comparison of OA over seeds")
    assert table == {"LoRA − KronA+": {
        "n": "3", "ΔOA (pp)": "-2.00 ± 1.00",
        "t-test p": f"{stats.ttest_rel(b, a).pvalue:.3f}", "Wilcoxon p": "0.250"}}
    assert table["LoRA − KronA+"]["t-test p"] == "0.074"
    assert "not compared" not in text

    runs = [report.load_run(w) for w in (lora, kp)]
    markdown = report.report(runs, markdown=True)
    assert "| LoRA − KronA+ | 3 | -2.00 ± 1.00 | 0.074 | 0.250 |" in markdown


def test_pairs_with_a_different_protocol_are_not_compared(tmp_path):
    seeds = _seeds({0: 0.9, 1: 0.92, 2: 0.91})
    runs = [report.load_run(_write_run(tmp_path, m, method=m, protocol=p, seeds=seeds))
            for m, p in (("lora", PROTOCOL), ("krona", PROTOCOL),
                         ("fft", {**PROTOCOL, "window": 9, "fit_on": "train"}))]
    runs.append(report.load_run(_write_run(tmp_path, "lp", method="linear_probe", seeds=seeds)))
    header, rows, skipped = report.comparison_table(runs)
    assert header == ["Pair", "n", "ΔOA (pp)", "t-test p", "Wilcoxon p"]
    assert [row[0] for row in rows] == ["LoRA − KronA"]
    no_protocol = [f"LP − {m} (split – vs per_class, spatially_disjoint – vs false, window – vs {w}, "
                   f"fit_on – vs {f}, select – vs last, train – vs 695, val – vs 0, test – vs 9554)"
                   for m, w, f in (("LoRA", 15, "scene"), ("KronA", 15, "scene"), ("FFT", 9, "train"))]
    assert skipped == no_protocol + [f"{m} − FFT (window 15 vs 9, fit_on scene vs train)"
                                     for m in ("LoRA", "KronA")]

    text = report.report(runs)
    assert "Botswana: not compared, protocol differs: LP − LoRA (split – vs per_class" in text
    assert "; LoRA − FFT (window 15 vs 9, fit_on scene vs train); " in text
    assert len([line for line in text.splitlines() if "not compared" in line]) == 1

    # No comparable pair left: no comparison table, only the note.
    text = report.report([runs[0], runs[2]])
    assert "paired comparison" not in text
    assert ("Botswana: not compared, protocol differs: "
            "LoRA − FFT (window 15 vs 9, fit_on scene vs train)") in text


def test_identical_runs_give_no_p_values_and_no_warnings(tmp_path):
    by_seed = {0: 0.95, 1: 0.96, 2: 0.97}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same = report.paired_comparison(by_seed, dict(by_seed))
        # Differences equal up to float noise (0.80 − 0.78 ≠ 0.82 − 0.80): no variance, no t-test.
        shifted = report.paired_comparison({0: 0.80, 1: 0.82, 2: 0.84}, {0: 0.78, 1: 0.80, 2: 0.82})
        runs = [report.load_run(_write_run(tmp_path, m, method=m, protocol=PROTOCOL,
                                           seeds=_seeds(by_seed))) for m in ("lora", "krona")]
        text = report.report(runs)
    assert same == {"seeds": [0, 1, 2], "n": 3, "mean": 0.0, "std": 0.0, "t_p": None,
                    "wilcoxon_p": None}
    assert 0.82 - 0.80 != 0.80 - 0.78
    assert shifted["mean"] == pytest.approx(0.02) and shifted["std"] == 0.0
    assert shifted["t_p"] is None and shifted["wilcoxon_p"] == pytest.approx(0.25)
    assert _table(text, "Botswana: paired comparison")["LoRA − KronA"] == {
        "n": "3", "ΔOA (pp)": "+0.00 ± 0.00", "t-test p": "–", "Wilcoxon p": "–"}


@pytest.mark.parametrize("overrides, match", [
    ({"seeds": {"0": 0.9}}, r"seeds must be a list; got \{'0': 0.9\}"),
    ({"seeds": [{"seed": 0}]}, r"seeds\[0\] has no oa"),
    ({"seeds": [{"seed": 0, "oa": 0.9}, {"oa": 0.9}]}, r"seeds\[1\] has no seed"),
    ({"seeds": [{"seed": 0, "oa": "high"}]}, r"seeds\[0\].oa must be a number; got 'high'"),
    ({"seeds": [{"seed": "0", "oa": 0.9}]}, r"seeds\[0\].seed must be an integer; got '0'"),
    ({"seeds": [{"seed": 0, "oa": 0.9}, {"seed": 0, "oa": 0.8}]}, r"seeds has a seed number twice"),
    ({"seeds": [{"seed": 0, "oa": 0.9, "leakage": 0.5}]}, r"seeds\[0\].leakage must be an object"),
    ({"protocol": "per_class"}, r"protocol must be an object; got 'per_class'"),
    ({"protocol": {"window": "15"}}, r"protocol.window must be an integer or 'scene'; got '15'"),
    ({"protocol": {"spatially_disjoint": 0}}, r"protocol.spatially_disjoint must be true or false"),
    ({"protocol": {"train": True}}, r"protocol.train must be an integer; got True"),
    ({"leakage": [0.99]}, r"leakage must be an object"),
    ({"leakage": {"test": "0.99"}}, r"leakage.test must be a number; got '0.99'"),
])
def test_malformed_new_keys(tmp_path, overrides, match):
    workdir = _write_run(tmp_path, "run", **overrides)
    with pytest.raises(report.ReportError, match=match) as excinfo:
        report.load_run(workdir)
    message = str(excinfo.value)
    assert message.startswith(f"{workdir}/results.json: ") and "\n" not in message


def test_new_keys_are_accepted(tmp_path):
    run = report.load_run(_write_run(tmp_path, "run", protocol=PROTOCOL, seeds=_seeds({0: 0.9}),
                                     leakage={"window": 15, "test": 0.991, "val": None}))
    assert run["protocol"] == PROTOCOL and run["leakage"]["val"] is None


def test_unfinished_workdirs_are_left_out_with_a_warning(workdirs, tmp_path, capsys):
    unfinished = tmp_path / "fft_running"
    unfinished.mkdir()
    assert report.main([workdirs[1], str(unfinished), "--out", str(tmp_path / "out")]) == 0
    out, err = capsys.readouterr()
    assert f"warning: {unfinished}/results.json: not found; {unfinished} is not the workdir of a " in err
    assert err.splitlines()[0].endswith("; left out of the report")
    assert list(_table(out, "Botswana")["OA (%)"]) == ["LoRA"]

    assert report.main([str(unfinished), str(unfinished), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (f"error: no finished run among {unfinished} {unfinished} (none "
                                    "has a results.json)")
    assert report.main([workdirs[1], str(tmp_path / "typo"), "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'typo'}: no such folder\n"


def test_runs_that_differ_in_epochs_or_protocol_are_noted(tmp_path, capsys):
    workdirs = [_write_run(tmp_path, m, method=m, config={"seed": 0, "epochs": e}, protocol=p)
                for m, e, p in (("lora", 50, PROTOCOL), ("krona", 50, PROTOCOL),
                                ("krona_plus", 30, PROTOCOL),
                                ("fft", 50, {**PROTOCOL, "window": 9, "fit_on": "train"}))]
    assert report.main([*workdirs, "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    note = ("Botswana: runs differ in epochs: KronA+ 30, others 50; in window: FFT 9, others 15; "
            "in fit_on: FFT train, others scene")
    table = next(b for b in text.split("\n\n") if b.startswith("Botswana: accuracy"))
    assert text.split("\n\n")[text.split("\n\n").index(table) + 1] == note

    runs = [report.load_run(w) for w in workdirs]
    assert report.differences_note(runs[:2]) is None
    assert report.differences_note([runs[0], runs[2]]) == "runs differ in epochs: LoRA 50, KronA+ 30"
    old = report.load_run(_write_run(tmp_path, "bitfit", method="bitfit"))   # before these keys
    assert report.differences_note([runs[0], runs[1], old]).startswith(
        "runs differ in epochs: BitFit –, others 50; in split: BitFit –, others per_class; ")
    svm = report.load_run(_write_run(tmp_path, "svm", method="fft", model="svm",
                                     config={"seed": 0, "epochs": 100}, protocol=PROTOCOL))
    assert report.differences_note([runs[0], runs[1], svm]) is None  # a fit has no epochs
    with pytest.raises(report.ReportError, match=r"config.epochs must be an integer; got '50'"):
        report.load_run(_write_run(tmp_path, "bad", config={"epochs": "50"}))


def test_the_plot_is_marked_and_only_its_own_file_is_replaced(workdirs, tmp_path, capsys):
    out = tmp_path / "reports" / "new"                     # created, parents included
    assert report.main([*workdirs, "--out", str(out)]) == 0
    png = out / "oa_vs_params.png"
    with Image.open(png) as image:
        assert image.text["Software"] == "hsic-jax report"
    assert matplotlib.image.imread(png).ndim == 3
    capsys.readouterr()
    assert report.main([*workdirs, "--out", str(out)]) == 0   # its own file: replaced
    assert "wrote " in capsys.readouterr().err

    mine = tmp_path / "mine"
    mine.mkdir()
    save_plot_oa_vs_params(str(tmp_path / "plain.png"), report.plot_rows([report.load_run(workdirs[0])]))
    foreign = {"notes": b"not a png", "matplotlib": (tmp_path / "plain.png").read_bytes()}
    assert "Matplotlib" in report.png_text(foreign["matplotlib"])["Software"]
    for kind, data in foreign.items():
        (mine / "oa_vs_params.png").write_bytes(data)
        assert report.main([*workdirs, "--out", str(mine)]) == 2
        out_text, err = capsys.readouterr()
        assert out_text == "" and err == (
            f"error: {mine / 'oa_vs_params.png'} exists and was not written by this report (its PNG "
            "metadata has no 'Software: hsic-jax report'); move it away or give --out another folder\n")
        assert (mine / "oa_vs_params.png").read_bytes() == data
    assert report.main([*workdirs, "--out", str(mine / "oa_vs_params.png")]) == 2
    assert capsys.readouterr().err == (f"error: --out {mine / 'oa_vs_params.png'} is a file, not a "
                                       "folder; give --out a folder\n")


def test_png_text_chunks():
    buffer = io.BytesIO()
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "Matplotlib")
    Image.new("RGB", (1, 1)).save(buffer, format="png", pnginfo=info)
    plain = buffer.getvalue()
    png = report.with_png_text(plain, "Software", "hsic-jax report")
    assert report.png_text(plain) == {"Software": "Matplotlib"}
    assert report.png_text(png) == {"Software": "hsic-jax report"}
    assert report.png_text(report.with_png_text(png, "Title", "x")) == {"Software": "hsic-jax report",
                                                                        "Title": "x"}
    assert report.png_text(b"GIF89a") == {}
    with Image.open(io.BytesIO(png)) as image:
        image.load()                                      # CRCs and layout are valid
        assert image.size == (1, 1) and image.text == {"Software": "hsic-jax report"}


def test_model_families_get_their_own_columns_after_spectralgpts_methods(tmp_path, capsys):
    runs = [_write_run(tmp_path, "sf", model="spectralformer", method="fft"),
            _write_run(tmp_path, "sf_lora", model="spectralformer", method="lora"),
            _write_run(tmp_path, "svm", model="svm", method="fft"),
            _write_run(tmp_path, "gpt_lora", method="lora"),  # no model key: SpectralGPT
            _write_run(tmp_path, "gpt_fft", model="spectralgpt", method="fft")]
    assert report.main([*runs, "--out", str(tmp_path)]) == 0
    table = _table(capsys.readouterr().out, "Botswana: accuracy")
    assert list(table["OA (%)"]) == ["LoRA", "FFT", "SpectralFormer", "SpectralFormer LoRA", "SVM"]
    with pytest.raises(report.ReportError, match="are both botswana/spectralformer/fft; pass one "
                                                 "workdir per dataset, model and method"):
        report.report([report.load_run(r) for r in (runs[0], _write_run(
            tmp_path, "sf2", model="spectralformer", method="fft"))])


def test_a_whole_scene_run_reports_its_window_as_the_scene(tmp_path, capsys):
    scene = {**PROTOCOL, "window": "scene"}
    workdirs = [_write_run(tmp_path, "lora", protocol=PROTOCOL),
                _write_run(tmp_path, "mamba", method="fft", model="mambahsi", protocol=scene,
                           leakage={"window": "scene", "test": 1.0, "val": None})]
    assert report.main([*workdirs, "--out", str(tmp_path)]) == 0
    table = _table(capsys.readouterr().out, "Botswana")
    assert list(table["Window (px)"].values()) == ["15", "scene"]
    assert table["Test px in a train window (%)"]["MambaHSI"] == "100.00"


def test_pretraining_workdirs_are_left_out_with_a_warning(workdirs, tmp_path, capsys):
    pretraining = tmp_path / "pretrain_demo"
    pretraining.mkdir()
    (pretraining / "results.json").write_text(json.dumps({"task": "pretrain", "final_loss": 0.5}))
    assert report.main([workdirs[1], str(pretraining), "--out", str(tmp_path / "out")]) == 0
    out, err = capsys.readouterr()
    assert f"warning: {pretraining} is a pre-training (pretrain.py), not a classification run" in err
    assert list(_table(out, "Botswana")["OA (%)"]) == ["LoRA"]
