"""fastconv.train and the `fastconv` command (train, evaluate, info)."""
import json
import subprocess
import sys

import numpy as np
import pytest

import fastconv
from fastconv import cli, data, models, nn, optim, train


def _blobs(n=96, seed=0):
    """Two separable classes of 1x8x8 images: bright left half vs bright right half."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.random((n, 1, 8, 8)).astype(np.float32) * 0.3
    x[y == 0, :, :, :4] += 1
    x[y == 1, :, :, 4:] += 1
    return x, y


def _tiny_model():
    fastconv.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))


def test_fit_learns_and_reports_history():
    x, y = _blobs()
    model = _tiny_model()
    loader = data.DataLoader(x, y, batch_size=16, shuffle=True, seed=0)
    history = train.fit(model, loader, epochs=3, optimizer=optim.SGD(model.parameters(), lr=0.1),
                        eval_data=(x, y), progress=False)
    assert [r["epoch"] for r in history] == [1, 2, 3]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["test_accuracy"] == 1.0
    assert all(r["images_per_s"] > 0 and r["seconds"] > 0 and r["lr"] == 0.1 for r in history)
    assert model.training  # fit and evaluate restore the mode


def test_fit_callback_stops_and_scheduler_steps_per_epoch():
    x, y = _blobs()
    model = _tiny_model()
    opt = optim.SGD(model.parameters(), lr=0.1)
    sched = optim.StepLR(opt, step_size=1, gamma=0.5)
    history = train.fit(model, data.DataLoader(x, y, 32), epochs=5, optimizer=opt, scheduler=sched,
                        progress=False, callback=lambda r: r["epoch"] == 2)
    assert len(history) == 2 and [r["lr"] for r in history] == [0.1, 0.05]
    assert "test_accuracy" not in history[0]
    with pytest.raises(ValueError, match="epochs"):
        train.fit(model, data.DataLoader(x, y, 32), epochs=-1)


def test_evaluate_predict_and_confusion_agree():
    x, y = _blobs(50)
    model = _tiny_model()
    model.train()
    logits = train.predict(model, x, batch_size=7)
    assert logits.shape == (50, 2) and model.training
    result = train.evaluate(model, data.DataLoader(x, y, batch_size=9), num_classes=2)
    pred = logits.argmax(1)
    assert result["accuracy"] == pytest.approx(np.mean(pred == y))
    assert result["loss"] == pytest.approx(float(nn.CrossEntropyLoss()(logits, y)), rel=1e-5)
    cm = result["confusion"]
    assert cm.sum() == 50 and np.trace(cm) == np.sum(pred == y)
    assert cm[0].sum() == np.sum(y == 0)
    text = train.format_confusion(cm)
    assert text.splitlines()[0].split()[1:] == ["0", "1"] and len(text.splitlines()) == 3


def test_plot_history_writes_png_or_declines_without_matplotlib(tmp_path, monkeypatch):
    history = [{"epoch": 1, "train_loss": 1.0, "train_accuracy": 0.5, "test_loss": 1.1, "test_accuracy": 0.4},
               {"epoch": 2, "train_loss": 0.5, "train_accuracy": 0.8, "test_loss": 0.7, "test_accuracy": 0.7}]
    try:
        import matplotlib  # noqa: F401
        assert train.plot_history(history, tmp_path / "a.png") is True
        assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    except ImportError:
        pass
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    assert train.plot_history(history, tmp_path / "b.png") is False
    assert not (tmp_path / "b.png").exists()


@pytest.mark.parametrize("name", list(train.SMALL_INPUT_MODELS))
def test_small_input_models_run_on_digits(name):
    model, size = train.build_model(name, width_mult=0.25 if name.startswith("mobilenet") else None)
    model.eval()
    assert model(np.zeros((2, 1, size, size), np.float32)).shape == (2, 10)
    with pytest.raises(ValueError, match="unknown model"):
        train.build_model("lenet6")


def test_resnet18_small_input_stem_keeps_torchvision_key_order():
    model, _ = train.build_model("resnet18")
    keys = list(model.state_dict())
    assert keys[0] == "conv1.weight" and model.state_dict()["conv1.weight"].shape == (64, 1, 3, 3)
    assert keys == list(models.resnet18(10, in_channels=1).state_dict())


# ---- the command ------------------------------------------------------------------------------
def _run(argv, capsys):
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_train_then_evaluate_reproduces_the_accuracy(tmp_path, capsys):
    out_dir = tmp_path / "run"
    code, out, _ = _run(["train", "--epochs", "2", "--subset", "300", "--no-progress", "--out", str(out_dir)], capsys)
    assert code == 0
    assert "training lenet5 (61,706 parameters)" in out and "300 train / 359 test images" in out
    metrics = json.loads((out_dir / "metrics.json").read_text())
    run = json.loads((out_dir / "run.json").read_text())
    assert [m["epoch"] for m in metrics] == [1, 2]
    assert run["model"] == "lenet5" and run["train_images"] == 300
    assert run["test_accuracy"] == pytest.approx(metrics[-1]["test_accuracy"])
    assert f"test accuracy {run['test_accuracy']:.2%}" in out
    try:
        import matplotlib  # noqa: F401
        assert (out_dir / "curves.png").exists()
    except ImportError:
        assert "no curves.png" in out

    # the saved weights give the reported accuracy, through the command and through the API
    code, out, _ = _run(["evaluate", "--weights", str(out_dir / "weights.npz")], capsys)
    assert code == 0 and f"accuracy {run['test_accuracy']:.2%}" in out
    assert out.splitlines()[1].split()[1:] == [str(i) for i in range(10)]  # the confusion matrix header
    model = models.lenet5()
    model.load_state_dict(fastconv.load(out_dir / "weights.npz"))
    d = data.load_digits(size=32)
    assert train.evaluate(model, (d.x_test, d.y_test))["accuracy"] == pytest.approx(run["test_accuracy"])


def test_info_prints_the_config(capsys):
    code, out, _ = _run(["info"], capsys)
    assert code == 0 and fastconv.config()["isa"] in out


@pytest.mark.parametrize("argv, message", [
    (["train", "--model", "lenet6"], "invalid choice: 'lenet6'"),
    (["train", "--epochs", "-1"], "expected a non-negative integer, got -1"),
    (["train", "--batch-size", "0"], "expected a positive integer, got 0"),
    (["train", "--lr", "nan"], "expected a positive number"),
    (["train", "--test-size", "1"], "expected a fraction in (0, 1)"),
    (["evaluate"], "--weights"),
    ([], "required"),
])
def test_bad_options_exit_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_unwritable_out_and_unreadable_weights(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", "--epochs", "1", "--out", str(blocker / "sub")])
    assert exc.value.code == 2 and "is not a writable directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main(["evaluate", "--weights", str(blocker)])
    assert exc.value.code == 2 and "cannot be read" in capsys.readouterr().err


def test_console_entry_point_runs_without_traceback(tmp_path):
    """`python -m fastconv` (what the `fastconv` script calls) in a fresh interpreter."""
    ok = subprocess.run([sys.executable, "-m", "fastconv", "train", "--epochs", "1", "--subset", "64",
                         "--out", str(tmp_path / "r")], capture_output=True, text=True, timeout=300,
                        cwd=tmp_path)  # not the source tree: that `fastconv` folder has no _core
    assert ok.returncode == 0, ok.stderr
    assert "epoch 1/1" in ok.stderr  # the progress bar
    assert (tmp_path / "r" / "weights.npz").exists()
    bad = subprocess.run([sys.executable, "-m", "fastconv", "train", "--epochs", "x"],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "--epochs" in bad.stderr
