"""Progress bars: live on a terminal, silent (no carriage returns) when stderr is a pipe or file.

Every tqdm bar in the packages passes ``disable=None`` when progress is on, which tqdm turns
into "off unless the stream is a TTY"; ``progress=False`` (``--no-progress``) still hides it.
"""

import io
import sys

import pytest
import torch

from diagnostics import HessianOperator
from optim import LSCPretrainer


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class _Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


def _hessian_work(progress: bool) -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 1).double()
    x = torch.randn(8, 6, dtype=torch.float64)
    y = torch.randn(8, 1, dtype=torch.float64)
    op = HessianOperator(model, torch.nn.functional.mse_loss, (x, y), chunk_size=2,
                         progress=progress)
    op.dense()  # "Hessian" bar over chunks of rows
    op.eigsh(k=2, method="lanczos")  # "Lanczos" bar


def _lsc_work(progress: bool) -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Tanh(), torch.nn.Linear(8, 8))
    LSCPretrainer(net, progress=progress).run()  # "LSC pre-training" bar


WORK = {"hessian": _hessian_work, "lsc": _lsc_work}


@pytest.mark.parametrize("name", sorted(WORK))
def test_no_carriage_returns_when_stderr_is_not_a_tty(name, monkeypatch, capfd):
    stream = _Pipe()
    monkeypatch.setattr(sys, "stderr", stream)
    WORK[name](progress=True)
    out, err = capfd.readouterr()
    text = stream.getvalue() + out + err
    assert "\r" not in text, f"{name}: progress-bar updates in a non-TTY log: {text[:200]!r}"


@pytest.mark.parametrize("name", sorted(WORK))
def test_bars_still_live_on_a_terminal(name, monkeypatch):
    stream = _Terminal()
    monkeypatch.setattr(sys, "stderr", stream)
    WORK[name](progress=True)
    assert "\r" in stream.getvalue(), f"{name}: no progress bar on a terminal"


@pytest.mark.parametrize("name", sorted(WORK))
def test_progress_false_hides_bars_on_a_terminal(name, monkeypatch):
    stream = _Terminal()
    monkeypatch.setattr(sys, "stderr", stream)
    WORK[name](progress=False)
    assert stream.getvalue() == ""
