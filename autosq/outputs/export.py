"""Export a chosen candidate: a checked, self-contained ONNX file (or a PyTorch state_dict)
with its metadata and a JSON model card beside it.

Nothing is written until every check has passed: the model and its card go to temporary files
in the destination folder and are renamed into place together, so an error never leaves a
partial file behind.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autosq._io import write_files
from autosq.arch.cost import cost_of
from autosq.arch.plan import plan
from autosq.compress.estimate import DC_PRECISIONS
from autosq.errors import MeasurementError, StudyError, UsageError
from autosq.measure.graph import INPUT_NAME, OPSET, OUTPUT_NAME
from autosq.outputs.training import plan_training, ship
from autosq.searching.records import SearchSettings, TrialRecord, load_record, read_settings
from autosq.searching.result import FrontMember, build_result
from autosq.searching.storage import DEFAULT_STORAGE, load_study, redact

if TYPE_CHECKING:
    import numpy as np
    import optuna
    import torch

    from autosq.accuracy.datasets import Dataset
    from autosq.accuracy.train import OnStep
    from autosq.arch.config import SqueezeNetConfig

FORMATS = ("onnx", "pt")
QUANTIZE = ("int8",)


@dataclass
class ExportReport:
    """What was written and what the checks found."""

    path: Path
    card_path: Path
    card: dict[str, Any] = field(default_factory=dict)


def check_destination(out: Path, fmt: str) -> None:
    """Fail before any work when the output cannot be written."""
    if fmt not in FORMATS:
        raise UsageError(f"fmt must be one of {', '.join(FORMATS)}; got {fmt!r}")
    suffix = ".onnx" if fmt == "onnx" else ".pt"
    if out.suffix.lower() != suffix:
        raise UsageError(f"out must end with {suffix} for the {fmt} format; got {out}")
    if not out.parent.is_dir():
        raise UsageError(f"cannot write {out}: folder {out.parent} does not exist")
    if not os.access(out.parent, os.W_OK):
        raise UsageError(f"cannot write {out}: folder {out.parent} is not writable")
    if out.is_dir():
        raise UsageError(f"cannot write {out}: it is a folder")


def find_trial(study: optuna.Study, storage: str, trial: int | None,
               recommended: bool) -> tuple[TrialRecord, FrontMember | None]:
    """(record, front member or None) of the trial to export, with clear errors."""
    if (trial is None) == (not recommended):
        raise UsageError("give either trial or recommended=True (not both, not neither)")
    result = build_result(study, storage)
    if recommended:
        member = result.recommended
        if member is None:
            raise StudyError(f"study {study.study_name!r} has no feasible front yet: "
                             f"{result.nearest_miss}")
        trial = member.trial
    assert trial is not None
    record = load_record(study, trial)
    if record is None:
        n = len(study.get_trials(deepcopy=False))
        state = next((t.state.name for t in study.get_trials(deepcopy=False)
                      if t.number == trial), None)
        if state is None:
            raise StudyError(f"trial {trial} does not exist in study {study.study_name!r} "
                             f"(trials 0..{n - 1})")
        raise StudyError(f"trial {trial} is {state}, not a finished candidate: only complete "
                         "trials can be exported")
    if not record.feasible:
        over = ", ".join(f"{k} {v:+.3g}" for k, v in record.constraints.items() if v > 0)
        why = record.skipped or f"over budget: {over}"
        raise StudyError(f"trial {trial} does not fit the study's budget ({why}); "
                         "pick a trial from `autosq front`")
    member = next((m for m in result.members if m.trial == trial), None)
    return record, member


def onnx_bytes_checked(model: torch.nn.Module, inputs: np.ndarray) -> tuple[bytes, dict[str, Any]]:
    """Export with weights inside and a fixed opset, run the ONNX checker's full check, and
    compare ONNX Runtime with torch on ``inputs``; raise if they disagree."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch

    from autosq.measure.onnx import export_bytes

    size = int(inputs.shape[-1])
    data = export_bytes(model, size)
    proto = onnx.load_from_string(data)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:  # onnx raises ValidationError and others
        raise MeasurementError(f"the exported model fails the ONNX checker: {exc}") from exc
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ref = model.eval()(torch.from_numpy(inputs)).numpy()
    got = np.concatenate([sess.run(None, {INPUT_NAME: inputs[i:i + 1]})[0]
                          for i in range(len(inputs))])
    diff = float(np.abs(ref - got).max())
    tol = 1e-4 * max(1.0, float(np.abs(ref).max()))
    agree = float((ref.argmax(1) == got.argmax(1)).mean())
    if diff > tol or agree < 1.0:
        raise MeasurementError(f"ONNX Runtime and torch disagree on the exported model: max "
                               f"abs difference {diff:.3g} (tolerance {tol:.3g}), top-1 "
                               f"agreement {agree:.0%}")
    return data, {"onnx_checker": "full check passed", "max_abs_diff_vs_torch": diff,
                  "top1_agreement_vs_torch": agree, "checked_on": f"{len(inputs)} inputs"}


def _with_metadata(data: bytes, meta: dict[str, Any]) -> bytes:
    import onnx

    proto = onnx.load_from_string(data)
    onnx.helper.set_model_props(proto, {k: v if isinstance(v, str) else json.dumps(v)
                                        for k, v in meta.items()})
    return bytes(proto.SerializeToString())


def _ort_predict(model: bytes, x: np.ndarray) -> np.ndarray:
    """ONNX Runtime's top-1 class for each image of ``x`` (the model takes batch 1)."""
    import numpy as np
    import onnxruntime as ort

    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    return np.array([int(sess.run(None, {INPUT_NAME: x[i:i + 1]})[0].argmax())
                     for i in range(len(x))])


def _ort_top1(model: bytes, data: Dataset) -> float:
    """Top-1 of the ONNX file on every validation image of ``data``, streamed."""
    correct = total = 0
    for xb, yb in data.batches("val", 256):
        correct += int((_ort_predict(model, xb.numpy()) == yb.numpy()).sum())
        total += len(yb)
    return correct / max(1, total)


def export_candidate(*, study: str, out: Path | str, storage: str = DEFAULT_STORAGE,
                     trial: int | None = None, recommended: bool = False, fmt: str = "onnx",
                     quantize: str | None = None, data: str | None = None,
                     epochs: float | None = None, untrained: bool = False,
                     threads: int | None = None, train_device: str | None = None,
                     pretrained: str | None = None,
                     teacher: str | None = None,
                     profiles: Sequence[str | Path] = (), compress: bool = False,
                     bits: int = 6, density: float = 1 / 3,
                     compress_steps: int = 200,
                     on_train: OnStep | None = None) -> ExportReport:
    """Rebuild a study's candidate (``trial``, or the ``recommended`` member), train it, check
    it and write it to ``out`` with its card beside it.

    Training data: ``data`` when given, else the study's own (a study searched with data
    records it), else none (a proxy study: seeded initial weights); ``untrained=True`` skips
    training whatever the study. The budget: ``epochs`` when given, else 4 times the budget
    behind the trial's accuracy (the search's recipe, or its refinement), from the trial's own
    seed; fewer steps than the search gave each candidate are warned about. ``threads``: the
    training's threads (default :func:`autosq.accuracy.threads.default_threads`);
    ``train_device``: where it trains (``auto``, ``cpu``, ``cuda``).
    ``pretrained`` (a SOURCE) starts the network from the weights it inherits (default: the
    study's source, when it had one), exported as inherited when there is no data;
    ``teacher`` (default: the study's) distils into the training. The card records the
    lineage (source and its SHA-256, teacher, steps, accuracy before and after) and the input
    normalisation the deployed model expects.

    ``fmt`` is ``onnx`` or ``pt``; ``quantize="int8"`` writes the static int8 model and times
    it against fp32 on the study's device (found in ``profiles`` folders first).
    ``compress=True`` runs Deep Compression on the trained network (prune to ``density``,
    retrain ``compress_steps`` steps, cluster at ``bits``, retrain the centroids) and writes
    the ``.dcz`` container beside ``out``, the stage-by-stage report in the card.
    ``on_train(step, steps, loss, images_per_s)`` sees the training's progress."""

    from autosq._version import __version__
    from autosq.measure.profiles import search_dirs

    out = Path(out)
    check_destination(out, fmt)
    search_dirs(profiles)  # a bad profiles folder fails before any work
    if quantize not in (None, *QUANTIZE):
        raise UsageError(f"quantize must be one of {', '.join(QUANTIZE)}; got {quantize!r}")
    if quantize and fmt != "onnx":
        raise UsageError("quantize makes an ONNX model: use fmt='onnx'")
    if compress and (untrained or quantize):
        raise UsageError("compress retrains the network: it needs data, and does not combine "
                         "with quantize (its codes are the quantization)")
    if compress_steps < 1 or not 0 < density <= 1:
        raise UsageError(f"compress_steps must be >= 1 and density in (0, 1]; got "
                         f"{compress_steps!r} and {density!r}")
    st = load_study(storage, study)
    settings = read_settings(st)
    rec, member = find_trial(st, storage, trial, recommended)
    number = rec.trial or 0
    config = rec.config
    if quantize is None and rec.precision == "int8" and fmt == "onnx" and not compress:
        quantize = "int8"  # the trial was searched, sized and timed as int8: ship it so
    precision = "int8" if quantize else "fp32" if rec.precision == "int8" else rec.precision
    seed = int(rec.accuracy_details.get("seed", number))

    training = plan_training(settings, rec, data, epochs, untrained, pretrained, teacher)
    dataset = training.data
    if compress and dataset is None:
        raise UsageError("compress retrains the network: it needs data (the study's, or "
                         "given)")
    from autosq.accuracy.device import resolve_device

    shipped = ship(training, rec, seed, threads, resolve_device(train_device), on_train)
    model, accuracy, x = shipped.model, shipped.accuracy, shipped.inputs
    if compress:
        from autosq.outputs.deep_compression import deep_compress, report_rows

        assert dataset is not None
        container, stages, model = deep_compress(model, config, dataset, bits, density,
                                                 compress_steps, seed,
                                                 threads=accuracy["threads"])
        accuracy = {**accuracy, "value": stages[-1].val_top1,
                    "note": "after Deep Compression (see deep_compression)"}
    if member is not None:
        lat: tuple[float | None, str | None] = (member.latency_ms, member.latency_kind)
    elif rec.latency is not None:
        lat = rec.latency.latency_ms, rec.latency.latency_kind
    else:
        lat = None, None
    card: dict[str, Any] = {
        "autosq_version": __version__, "study": study, "storage": redact(storage),
        "trial": number, "arch_id": rec.arch_id, "config": config.to_dict(),
        "metaparameters": rec.values, "precision": precision, "params": rec.params,
        "macs": rec.macs, "peak_mem_mb": rec.peak_mem_mb, "device": settings.device,
        "budget": settings.budget.to_dict(), "search_latency_ms": lat[0],
        "latency_kind": lat[1], "search_accuracy": rec.accuracy,
        "search_accuracy_kind": rec.accuracy_kind, "accuracy": accuracy, "format": fmt,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    card["lineage"] = shipped.lineage
    if shipped.normalisation is not None:
        # How the deployed model's inputs must be prepared: RGB in [0, 1], minus mean, / std.
        card["input_normalisation"] = shipped.normalisation
    card_path = out.with_name(out.name + ".json")
    extra: list[tuple[Path, bytes]] = []
    if compress:
        dcz = out.with_suffix(".dcz")
        card["deep_compression"] = {"container": str(dcz), "container_bytes": len(container),
                                    "bits": bits, "density": density,
                                    "retrain_steps": compress_steps,
                                    "stages": report_rows(stages)}
        extra.append((dcz, container))
    if precision in DC_PRECISIONS:  # the search sized it compressed: say how to get there
        card["compress_with"] = (f"autosq compress {out} --out {out.with_suffix('.dcz')} "
                                 f"--bits {DC_PRECISIONS[precision]}")
    # What the plan counts for this file's precision (the rule the size budget uses: for an
    # fp32 or int8 export of a trial searched at that precision, the very bytes it counted),
    # beside what the file holds (its weights: weights_bytes; all of it, with the graph, names
    # and metadata: size_bytes). They differ only where an exporter shares equal tensors (the
    # zero biases of an untrained model), by well under 1%.
    card["weights_bytes_counted"] = cost_of(plan(config)).size_bytes(
        "int8" if quantize == "int8" else "fp32")
    if fmt == "pt":
        import io

        import torch

        buf = io.BytesIO()
        torch.save({"config": config.to_dict(), "state_dict": model.state_dict(),
                    "autosq": {**{k: card[k] for k in ("study", "trial", "arch_id")},
                               "input_normalisation": shipped.normalisation}}, buf)
        card["size_bytes"] = len(buf.getvalue())
        card["weights_bytes"] = sum(v.numel() * v.element_size()
                                    for v in model.state_dict().values())
        card["load_with"] = ("autosq.arch.model.build(SqueezeNetConfig.from_dict(d['config']))"
                             ".load_state_dict(d['state_dict'])")
        write_files([(out, buf.getvalue()), *extra,
                     (card_path, json.dumps(card, indent=2).encode())])
        return ExportReport(out, card_path, card)

    fp32, checks = onnx_bytes_checked(model, x[:16])
    card["checks"] = checks
    card["opset"] = OPSET
    card["input"] = {"name": INPUT_NAME,
                     "shape": [1, 3, config.input_size, config.input_size]}
    card["output"] = {"name": OUTPUT_NAME, "shape": [1, config.num_classes]}
    payload = fp32
    if shipped.data is not None:
        # The accuracy of the file itself, by ONNX Runtime on every validation image: what ships
        # is what was scored (a conversion that lost accuracy shows here).
        accuracy["onnx_val_top1"] = _ort_top1(fp32, shipped.data)
    if quantize == "int8":
        payload, card["quantization"] = _quantize_report(fp32, x, shipped.data, config,
                                                         settings, profiles)
    meta = {"autosq_version": __version__, "config": config.to_dict(), "device":
            settings.device, "budget": settings.budget.to_dict(), "latency_ms": lat[0],
            "latency_kind": lat[1], "accuracy": accuracy.get("value"),
            "accuracy_kind": accuracy.get("kind"), "study": study, "trial": number,
            "precision": precision}
    if shipped.normalisation is not None:
        meta["input_normalisation"] = shipped.normalisation
    if "pretrained" in shipped.lineage:
        meta["pretrained"] = shipped.lineage["pretrained"]
    payload = _with_metadata(payload, meta)
    card["size_bytes"] = len(payload)
    card["weights_bytes"] = initializer_bytes(payload)
    card["metadata_keys"] = sorted(meta)
    write_files([(out, payload), *extra, (card_path, json.dumps(card, indent=2).encode())])
    return ExportReport(out, card_path, card)


def initializer_bytes(model: bytes) -> int:
    """Bytes of the tensors (weights, scales, biases) an ONNX model holds."""
    import onnx
    from onnx import numpy_helper

    return sum(numpy_helper.to_array(t).nbytes
               for t in onnx.load_from_string(model).graph.initializer)


def _quantize_report(fp32: bytes, x: np.ndarray, data: Dataset | None,
                     config: SqueezeNetConfig, settings: SearchSettings,
                     profiles: Sequence[str | Path]) -> tuple[bytes, dict[str, Any]]:
    """Quantize (calibrated on real inputs) and measure size, latency, accuracy before/after."""
    import numpy as np

    from autosq.measure import timer_for
    from autosq.measure.profiles import load_profile
    from autosq.measure.quantize import quantize_bytes

    if data is None:
        from autosq.accuracy.datasets import load_dataset

        # Generated shapes (a small set: 70 training images) stand in for images.
        calib = load_dataset("builtin:shapes:7", config.input_size).sample("train", 64)[0]
        source = "builtin:shapes (64 generated training images)"
    else:
        calib = data.sample("train", 64)[0]
        source = f"{len(calib)} training images of the data"
    int8 = quantize_bytes(fp32, config.input_size, calib.numpy())
    timer = timer_for(load_profile(settings.device, profiles))
    before, after = timer.time_many([fp32, int8])
    if data is not None:
        acc_fp32, acc_int8 = _ort_top1(fp32, data), _ort_top1(int8, data)
        kind = "val_top1"
    else:
        acc_fp32 = 1.0
        acc_int8 = float(np.mean(_ort_predict(int8, x) == _ort_predict(fp32, x)))
        kind = "top-1 agreement with fp32 on random inputs"
    return int8, {
        "method": "static, per-channel, QDQ (ONNX Runtime, after quant_pre_process)",
        "calibration": source,
        "size_bytes": {"fp32": len(fp32), "int8": len(int8)},
        "latency_ms": {"fp32": before.latency_ms, "int8": after.latency_ms,
                       "kind": before.latency_kind, "timed": "together, interleaved"},
        # On some CPUs ONNX Runtime's int8 kernels lose to fp32: say so, it is a reason to ship
        # fp32 there.
        "slower_than_fp32": after.latency_ms > before.latency_ms,
        "accuracy": {"fp32": acc_fp32, "int8": acc_int8,
                     "kind": kind},
    }
