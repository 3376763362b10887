"""The run report: plots and report.html from full, partial and regression run folders."""

from __future__ import annotations

import html
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from fathom.errors import FathomError
from fathom.report import Section, make_plots, plot_confusion_matrix, save_section, write_report

CLASS_NAMES = ["cat", "dog", "bird"]
CONFUSION = [[45, 3, 2], [4, 40, 6], [1, 5, 44]]


def _write_json(path: Path, value: object) -> None:
    path.write_text(json.dumps(value), encoding="utf-8")


def _run_json(task: str, status: str = "completed", **overrides: object) -> dict:
    run = {
        "name": "demo-run",
        "created": "2024-05-14T09:31:07+00:00",
        "status": status,
        "versions": {"fathom": "0.1.0", "torch": "2.3.0", "python": "3.11.7"},
        "git": "3f9c2e1",
        "seed": 7,
        "task": task,
        "data": {
            "name": "toy",
            "task": task,
            "input_shape": [3, 8, 8],
            "num_classes": 3,
            "class_names": CLASS_NAMES,
            "feature_names": None,
            "target_name": None,
            "normalization": None,
            "extra": {},
        },  # fmt: skip
        "model": {"name": "tiny_cnn", "parameters": 12345},
        "device": "cpu",
        "duration_seconds": 12.5,
        "epochs_completed": 3,
        "steps": 150,
        "best": {"metric": "val_accuracy", "value": 0.86, "epoch": 3},
    }
    run.update(overrides)
    return run


def _metrics_lines(val_metrics: dict[str, float]) -> list[str]:
    """Three epochs of 50 steps: a train line every 10 steps and a val line per epoch."""
    lines = []
    for step in range(0, 150, 10):
        loss = 1.1 * math.exp(-step / 60) + 0.2
        lines.append({"kind": "train", "step": step, "epoch": step / 50, "loss": loss,
                      "lr": 0.1 * (1 - step / 150), "samples_per_second": 5000.0,
                      **{name: value * (0.8 + step / 750) for name, value in val_metrics.items()}})  # fmt: skip
        if step % 50 == 40:
            epoch = (step + 10) // 50
            lines.append({"kind": "val", "step": step + 10, "epoch": epoch, "loss": loss + 0.05,
                          **{name: value * (0.9 + epoch / 30) for name, value in val_metrics.items()}})  # fmt: skip
    return [json.dumps(line) for line in lines]


def _classification_run(run_dir: Path, **overrides: object) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_json(run_dir / "run.json", _run_json("classification", **overrides))
    (run_dir / "config.yaml").write_text(
        "seed: 7\noptim:\n  name: sgd\n  lr: 0.1\ntrainer:\n  epochs: 3\n"
    )
    lines = _metrics_lines({"accuracy": 0.8, "top5_accuracy": 1.0})
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + '\n{"kind": "tra')  # half-written
    evaluation = {
        "split": "test",
        "metrics": {"loss": 0.41, "accuracy": 0.86, "top5_accuracy": 1.0},
        "per_class": {
            "precision": [0.9, 0.833, 0.846],
            "recall": [0.9, 0.8, 0.88],
            "f1": [0.9, 0.816, 0.863],
            "support": [50, 50, 50],
        },  # fmt: skip
        "confusion_matrix": CONFUSION,
        "class_names": CLASS_NAMES,
    }
    _write_json(run_dir / "evaluation-test.json", evaluation)
    return run_dir


def _regression_run(run_dir: Path) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    data = {"name": "housing", "task": "regression", "input_shape": [8], "num_classes": None,
            "class_names": None, "feature_names": ["rooms", "age"], "target_name": "price"}  # fmt: skip
    _write_json(run_dir / "run.json", _run_json("regression", data=data, best=None))
    lines = _metrics_lines({"mae": 0.3, "rmse": 0.4, "r2": 0.8})
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    targets = [index / 10 for index in range(40)]
    sample = {
        "target": targets,
        "prediction": [value + 0.1 * math.sin(value * 7) for value in targets],
    }
    evaluation = {"split": "test", "metrics": {"loss": 0.16, "mae": 0.31, "rmse": 0.4, "r2": 0.81},
                  "predictions_sample": sample}  # fmt: skip
    _write_json(run_dir / "evaluation-test.json", evaluation)
    return run_dir


def _save_png(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (120, 80), (200, 60, 60)).save(path)


def test_classification_report_has_plots_tables_config_and_versions(tmp_path: Path) -> None:
    run_dir = _classification_run(tmp_path / "run", name="demo <b>&</b>")
    report = write_report(run_dir)
    text = report.read_text(encoding="utf-8")
    for name in ("loss", "metrics", "learning_rate", "confusion_matrix"):
        assert (run_dir / "plots" / f"{name}.png").stat().st_size > 5000
    assert report == run_dir / "report.html"
    assert "demo &lt;b&gt;&amp;&lt;/b&gt;" in text and "<b>&</b>" not in text
    assert text.count('src="data:image/png;base64,') == 4
    assert "Per class" in text and "macro average" in text and "<td>bird</td>" in text
    assert "<td>Top-5 accuracy</td>" in text and "<th>Test</th>" in text
    assert "lr: 0.1" in text and "<td>torch</td>" in text and "12,345" in text
    assert "http" not in text.replace("http-equiv", "")  # self-contained
    assert not list(run_dir.glob(".*.tmp"))


def test_summary_shows_the_precision_used_when_run_json_records_it(tmp_path: Path) -> None:
    with_precision = write_report(_classification_run(tmp_path / "a", precision="bf16"))
    without = write_report(_classification_run(tmp_path / "b"))
    assert "<td>Precision</td><td>bf16</td>" in with_precision.read_text(encoding="utf-8")
    assert "<td>Precision</td>" not in without.read_text(encoding="utf-8")


def test_report_with_only_run_json_still_written(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    _write_json(run_dir / "run.json", {"name": "early", "status": "running"})
    text = write_report(run_dir).read_text(encoding="utf-8")
    assert "still in progress" in text and "<img" not in text
    assert make_plots(run_dir) == []


def test_report_of_an_empty_folder_uses_the_folder_name(tmp_path: Path) -> None:
    run_dir = tmp_path / "lonely-run"
    run_dir.mkdir()
    text = write_report(run_dir).read_text(encoding="utf-8")
    assert "lonely-run" in text and "unknown" in text


def test_missing_run_folder_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(FathomError, match="no such run folder"):
        write_report(tmp_path / "absent")


def test_non_finite_and_odd_records_do_not_break_plots(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    lines = [
        '{"kind": "train", "step": 1, "loss": NaN, "lr": [0.1, 0.01]}',
        '{"kind": "train", "step": 2, "loss": Infinity, "lr": [0.1, 0.01]}',
        '{"kind": "train", "step": 3, "loss": 0.5, "lr": [0.09, 0.009], "accuracy": null}',
        '{"kind": "val", "step": 3, "epoch": 1, "loss": 0.6, "accuracy": 0.5}',
        "[1, 2]",
    ]
    (run_dir / "metrics.jsonl").write_text("\n".join(lines))
    _write_json(run_dir / "run.json", {"data": None, "model": "?", "best": None})
    _write_json(
        run_dir / "evaluation-val.json", {"metrics": {"loss": 0.6}, "confusion_matrix": [[1, 2]]}
    )
    names = sorted(path.name for path in make_plots(run_dir))
    assert names == ["learning_rate.png", "loss.png", "metrics.png"]
    assert "Evaluation (val split)" not in write_report(run_dir).read_text(encoding="utf-8")


def test_failed_run_shows_its_message(tmp_path: Path) -> None:
    run_dir = _classification_run(tmp_path / "run", status="failed", message="loss became NaN")
    text = write_report(run_dir).read_text(encoding="utf-8")
    assert "This run failed. loss became NaN" in text


def test_regression_report_has_prediction_plot_and_metrics(tmp_path: Path) -> None:
    run_dir = _regression_run(tmp_path / "run")
    text = write_report(run_dir).read_text(encoding="utf-8")
    assert (run_dir / "plots" / "predictions.png").is_file()
    assert not (run_dir / "plots" / "confusion_matrix.png").exists()
    assert "<td>RMSE</td>" in text and "<td>R²</td>" in text and "price" in text
    assert "Per class" not in text and text.count("<img") == 4


def test_extra_sections_and_other_figures(tmp_path: Path) -> None:
    run_dir = _classification_run(tmp_path / "run")
    _save_png(run_dir / "plots" / "gradient_norms.png")
    section = Section("Diagnostics", html="<p>All checks ran.</p>", headers=["Check", "Result"],
                      rows=[["gradients", "fine <ok>"], ["dead units", 0.25]])  # fmt: skip
    text = write_report(run_dir, extra_sections=[section]).read_text(encoding="utf-8")
    assert "<h2>Diagnostics</h2><p>All checks ran.</p>" in text
    assert "<td>fine &lt;ok&gt;</td>" in text and "<td>0.2500</td>" in text
    assert "Other figures" in text and 'alt="Gradient norms"' in text
    assert text.index("Diagnostics") < text.index("Other figures") < text.index("Configuration")


def test_saved_sections_show_text_tables_and_their_images(tmp_path: Path) -> None:
    run_dir = _classification_run(tmp_path / "run")
    _save_png(run_dir / "plots" / "samples_epoch_1.png")
    _save_png(run_dir / "plots" / "unclaimed.png")
    save_section(
        run_dir, "doctor", "Diagnosis <1>", text="first & only\n\nsecond",
        headers=["finding", "value"], rows=[["dead ReLUs", 0.5]],
        images=["plots/samples_epoch_1.png", "plots/missing.png"],
    )  # fmt: skip
    page = write_report(run_dir).read_text()
    section = page[page.index("Diagnosis &lt;1&gt;") :]
    assert "<p>first &amp; only</p><p>second</p>" in section
    assert "dead ReLUs" in section and "0.5" in section
    assert page.count('alt="samples epoch 1"') == 1  # shown in its section, not again
    assert 'alt="Unclaimed"' in page


def test_confusion_matrix_counts_option(tmp_path: Path) -> None:
    path = plot_confusion_matrix(CONFUSION, CLASS_NAMES, tmp_path / "counts.png", normalize=False)
    with Image.open(path) as image:
        assert image.width > 300 and image.height > 300


def test_plots_leave_pyplot_alone(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text(
        '{"kind": "train", "step": 1, "epoch": 0.1, "loss": 1.0}'
    )
    code = (
        "import sys; from fathom.report import make_plots; "
        f"make_plots({str(run_dir)!r}); print('matplotlib.pyplot' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


PROBE = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const probe = document.createElement("div");
  probe.id = "probe";
  probe.textContent = JSON.stringify({
    images: images.length,
    decoded: images.filter((image) => image.complete && image.naturalWidth > 0).length,
    tables: document.querySelectorAll("table").length,
    rows: document.querySelectorAll("tr").length,
    overflow: document.documentElement.scrollWidth > window.innerWidth,
  });
  document.body.appendChild(probe);
});
</script>"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("headless Chromium is not installed (apt-get install -y chromium)")


def _browse(tmp_path: Path, *arguments: str) -> str:
    command = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--user-data-dir={tmp_path / 'profile'}", *arguments]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    run_dir = _classification_run(tmp_path / "run")
    _save_png(run_dir / "plots" / "extra.png")
    report = write_report(run_dir)
    probe = run_dir / "probe.html"
    probe.write_text(report.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"))
    dom = _browse(
        tmp_path,
        "--window-size=1280,900",
        "--virtual-time-budget=5000",
        "--dump-dom",
        probe.as_uri(),
    )
    found = re.search(r'<div id="probe">(.*?)</div>', dom)
    assert found, dom[-2000:]
    facts = json.loads(html.unescape(found.group(1)))
    assert facts["images"] == 5 and facts["decoded"] == 5
    assert facts["tables"] >= 4 and facts["rows"] >= 20
    assert not facts["overflow"]

    screenshot = tmp_path / "report.png"
    _browse(tmp_path, "--window-size=1280,2400", f"--screenshot={screenshot}", report.as_uri())
    with Image.open(screenshot) as image:
        assert image.size == (1280, 2400)
        assert image.convert("RGB").getcolors(256) is None  # more than 256 colours: not blank
        assert sum(image.convert("RGB").getpixel((10, 10))) < 200  # the dark header is styled
