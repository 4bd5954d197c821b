"""Choosing the CPU backend by measurement, with the timings injected (no test depends on which runtime is
fastest here): the fastest is kept, the choice cached per model and machine and reused without measuring, a
failing candidate left out with its error, and a cache file that no longer applies measured again."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from srkit.engine import cpu_choice
from srkit.engine.cpu_choice import choose
from srkit.engine.plan import build_plan
from srkit.models.zoo import LoadedModel

from ._models import small_model


class Fake:
    """A stand-in executor that says how fast it is."""

    def __init__(self, name: str, ms: float) -> None:
        self.name, self.ms = name, ms


@pytest.fixture(autouse=True)
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("SRKIT_CACHE", str(tmp_path))
    return tmp_path


def _candidates(timings: dict[str, float], built: list[str] | None = None) -> dict:
    def build(name: str) -> Fake:
        if built is not None:
            built.append(name)
        return Fake(name, timings[name])

    return {name: (lambda name=name: build(name)) for name in timings}


def _measure(executor: Fake, best_ms: float) -> float:
    return executor.ms


def test_the_fastest_is_chosen_and_cached():
    executor, choice = choose(_candidates({"openvino": 9.0, "ncnn": 4.0, "torch": 12.0}), "m1", _measure)
    assert executor.name == choice.backend == "ncnn" and choice.how == "measured"
    record = json.loads(cpu_choice.choice_path("m1").read_text())
    assert record["backend"] == "ncnn" and record["timings_ms"] == {"openvino": 9.0, "ncnn": 4.0, "torch": 12.0}
    assert record["cpu"] and "threads" in record and "openvino" in record["versions"]
    assert "ncnn 4.0 ms, openvino 9.0 ms, torch 12.0 ms" in choice.reason()


def test_a_cached_choice_builds_only_that_backend_and_measures_nothing():
    choose(_candidates({"openvino": 9.0, "ncnn": 4.0}), "m2", _measure)
    built: list[str] = []
    executor, choice = choose(
        _candidates({"openvino": 1.0, "ncnn": 4.0}, built), "m2", lambda e, best: pytest.fail("measured again")
    )
    assert built == ["ncnn"] and executor.name == "ncnn" and choice.how == "cached"


def test_another_model_or_machine_is_measured_again(monkeypatch):
    choose(_candidates({"openvino": 9.0, "ncnn": 4.0}), "m3", _measure)
    _, other_model = choose(_candidates({"openvino": 1.0, "ncnn": 4.0}), "m4", _measure)
    assert other_model.backend == "openvino" and other_model.how == "measured"
    monkeypatch.setattr(cpu_choice, "cpu_flags", lambda: frozenset({"avx512_fp16"}))  # another CPU
    _, other_cpu = choose(_candidates({"openvino": 1.0, "ncnn": 4.0}), "m3", _measure)
    assert other_cpu.backend == "openvino" and other_cpu.how == "measured"


def test_a_cached_backend_no_longer_offered_is_measured_again():
    choose(_candidates({"openvino": 9.0, "ncnn": 4.0}), "m5", _measure)
    _, choice = choose(_candidates({"openvino": 9.0, "torch": 20.0}), "m5", _measure)  # ncnn uninstalled
    assert choice.backend == "openvino" and choice.how == "measured"


def test_a_failing_candidate_is_left_out_with_its_error():
    def broken() -> Fake:
        raise RuntimeError("unsupported op Foo\nsecond line")

    candidates = {**_candidates({"openvino": 9.0}), "ncnn": broken}
    executor, choice = choose(candidates, "m6", _measure)
    assert executor.name == "openvino"
    assert choice.failed == {"ncnn": "RuntimeError: unsupported op Foo"}
    assert "ncnn failed: RuntimeError: unsupported op Foo" in choice.reason()


def test_a_damaged_cache_file_is_measured_again():
    path = cpu_choice.choice_path("m7")
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    _, choice = choose(_candidates({"openvino": 9.0, "ncnn": 4.0}), "m7", _measure)
    assert choice.how == "measured" and json.loads(path.read_text())["backend"] == "ncnn"


def test_the_cache_file_is_replaced_whole(monkeypatch):
    choose(_candidates({"openvino": 9.0, "ncnn": 4.0}), "m8", _measure)
    assert [p.name for p in cpu_choice.choice_path("m8").parent.iterdir()] == [cpu_choice.choice_path("m8").name]


def test_the_real_timer_runs_a_warm_up_then_the_median_of_reps(monkeypatch):
    module, info = small_model("compact-x3", seed=1)
    plan = build_plan(LoadedModel.of(module, info), torch.device("cpu"))
    runs: list[tuple] = []
    real = plan.run
    monkeypatch.setattr(plan, "run", lambda x, **kw: runs.append(tuple(x.shape)) or real(x, **kw))
    monkeypatch.setattr(cpu_choice, "BUDGET_MS", float("inf"))  # however slow this machine is
    assert cpu_choice.time_executor(plan) > 0
    assert runs == [(1, 3, cpu_choice.TILE, cpu_choice.TILE)] * (1 + cpu_choice.REPS)
    runs.clear()
    assert cpu_choice.time_executor(plan, best_ms=1e-6) > 0  # far slower than the best so far: one run only
    assert len(runs) == 1
    runs.clear()
    monkeypatch.setattr(cpu_choice, "BUDGET_MS", 1e-6)  # one timed run already fills the budget
    assert cpu_choice.time_executor(plan) > 0
    assert len(runs) == 2


@pytest.mark.parametrize(
    "parameters,side", [(600_000, 256), (4_000_000, 256), (16_697_987, 120), (10**9, cpu_choice.MIN_TIMED_TILE)]
)
def test_a_larger_network_is_timed_on_a_smaller_tile(parameters, side):
    """About the same work per timed run (multiply-adds per pixel grow with the parameters), on whole 8-pixel
    units, never below MIN_TIMED_TILE: RRDB x4plus's 16.7 M parameters on 120x120."""
    _, info = small_model("compact-x3", seed=1)
    assert cpu_choice.timed_tile(dataclasses.replace(info, parameters=parameters)) == side


def test_the_timed_tile_is_part_of_the_cache_key_and_the_reason():
    _, choice = choose(_candidates({"openvino": 9.0, "ncnn": 4.0}), "m10", _measure, tile=120)
    assert cpu_choice.choice_path("m10", 120).is_file() and not cpu_choice.choice_path("m10").is_file()
    assert choice.reason().startswith("fastest on a 120x120 tile (measured)")


def test_the_fastest_so_far_is_passed_to_the_timer():
    seen: list[float] = []

    def measure(executor: Fake, best_ms: float) -> float:
        seen.append(best_ms)
        return executor.ms

    choose(_candidates({"openvino": 9.0, "ncnn": 4.0, "torch": 12.0}), "m9", measure)
    assert seen == [float("inf"), 9.0, 4.0]
