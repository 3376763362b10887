import io

from fathom.engine.progress import ProgressBar, ProgressLog, make_progress


def test_plain_log_lines_show_epoch_step_loss_speed_and_eta(blobs):
    from tests_support import trainer_for

    stream = io.StringIO()
    trainer_for(blobs, [ProgressLog(stream)], log_every_steps=3).fit()
    lines = stream.getvalue().splitlines()
    train_lines = [line for line in lines if " step " in line]
    assert train_lines and all(
        word in train_lines[0] for word in ("epoch", "loss", "accuracy", "samples/s", "eta")
    )
    assert sum("validation" in line for line in lines) == 2


def test_progress_bar_runs_without_a_terminal(blobs):
    from tests_support import trainer_for

    bar = ProgressBar()
    bar.console.file = io.StringIO()
    trainer_for(blobs, [bar]).fit()
    assert "validation" in bar.console.file.getvalue()


def test_make_progress_modes():
    assert make_progress("none") is None
    assert isinstance(make_progress("log"), ProgressLog)
    assert isinstance(make_progress("bar"), ProgressBar)
