"""Progress of long operations: the work runs in a worker thread, the display stays in the
caller's; in a notebook the bar is one display updated in place, ending finished (or
failed)."""

from __future__ import annotations

import threading

import pytest

from mosaico_dsl.display import progress


def test_run_returns_the_work_result_from_a_worker_thread(capsys):
    caller = threading.get_ident()

    def work(r: progress.Reporter):
        r.update(1, 2)
        r.message("halfway [not markup]")
        assert r.snapshot() == (1, 2, "halfway \\[not markup]")
        return threading.get_ident()

    assert progress.run("working", work) != caller
    out = capsys.readouterr()
    assert out.out == ""  # not a terminal, not a notebook: nothing drawn


def test_run_raises_the_work_exception_in_the_caller():
    class Boom(Exception):
        pass

    def work(_):
        raise Boom("inside")

    with pytest.raises(Boom, match="inside"):
        progress.run("failing", work)


def _outputs(shell, monkeypatch, body):
    from IPython.utils.capture import capture_output

    monkeypatch.setattr(progress, "in_notebook", lambda: True)
    with capture_output(display=True) as cap:
        try:
            body()
        except RuntimeError:
            pass
    return cap.outputs


def test_in_a_notebook_one_display_is_updated_in_place(shell, monkeypatch):
    import time

    def work(r: progress.Reporter):
        for i in range(1, 4):
            r.update(i, 3)
            time.sleep(0.25)
        return "done"

    outs = _outputs(shell, monkeypatch, lambda: progress.run("simulating", work, unit="s"))
    assert len(outs) >= 3
    assert all("mosaico-progress" in o.data["text/html"] for o in outs)
    # One display, created once and then updated: the notebook shows a single bar.
    ids = {o.transient["display_id"] for o in outs}
    assert len(ids) == 1 and not outs[0].update and all(o.update for o in outs[1:])
    assert "simulating" in outs[0].data["text/plain"] and "✓" not in outs[0].data["text/plain"]
    last = outs[-1].data
    assert "✓" in last["text/plain"] and "100%" in last["text/plain"]
    assert "3/3 s" in last["text/plain"]


def test_in_a_notebook_a_failure_leaves_a_failed_bar(shell, monkeypatch):
    def work(r):
        r.update(1, 4)
        raise RuntimeError("no")

    outs = _outputs(shell, monkeypatch, lambda: progress.run("placing", work))
    assert "failed" in outs[-1].data["text/plain"] and "✓" not in outs[-1].data["text/plain"]


def test_task_reports_as_work_goes(shell, monkeypatch):
    def body():
        with progress.task("deploying") as p:
            p.message("s1: writing 12 entries")
            p.update(5, 10)

    outs = _outputs(shell, monkeypatch, body)
    texts = [o.data["text/plain"] for o in outs]
    # Reports may come faster than redraws; the last one stays on the finished bar.
    assert "s1: writing 12 entries" in texts[-1] and "✓" in texts[-1]


def test_an_interrupt_stops_work_that_reports(monkeypatch):
    import _thread
    import time

    stopped = threading.Event()

    def work(r: progress.Reporter):
        try:
            for i in range(1000):
                r.update(i, 1000)
                time.sleep(0.01)
        except KeyboardInterrupt:
            stopped.set()
            raise
        return "finished"

    timer = threading.Timer(0.3, _thread.interrupt_main)  # Ctrl-C, 0.3 s in
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        progress.run("simulating", work)
    assert stopped.wait(5), "the worker kept running after the interrupt"
