"""Export a chosen candidate: a checked, self-contained ONNX file (or a PyTorch state_dict)
with its metadata and a JSON model card beside it.

Nothing is written until every check has passed: the model and its card go to temporary files
in the destination folder and are renamed into place together, so an error never leaves a
partial file behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autosq.errors import MeasurementError, StudyError, UsageError

if TYPE_CHECKING:
    import numpy as np
    import optuna
    import torch

    from autosq.arch import SqueezeNetConfig

OPSET = 17
FORMATS = ("onnx", "pt")


@dataclass
class ExportReport:
    """What was written and what the checks found."""

    path: Path
    card_path: Path
    card: dict[str, Any] = field(default_factory=dict)


def check_destination(out: Path, fmt: str) -> None:
    """Fail before any work when the output cannot be written."""
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    suffix = ".onnx" if fmt == "onnx" else ".pt"
    if out.suffix.lower() != suffix:
        raise UsageError(f"--out must end with {suffix} for --format {fmt}; got {out}")
    if not out.parent.is_dir():
        raise UsageError(f"cannot write {out}: folder {out.parent} does not exist")
    if not os.access(out.parent, os.W_OK):
        raise UsageError(f"cannot write {out}: folder {out.parent} is not writable")
    if out.is_dir():
        raise UsageError(f"cannot write {out}: it is a folder")


def find_trial(study: optuna.Study, storage: str, trial: int | None,
               recommended: bool) -> tuple[int, dict[str, Any], dict[str, Any] | None]:
    """(number, record, front row or None) of the trial to export, with clear errors."""
    from autosq.result import build_result
    from autosq.study import TRIAL_ATTR, is_feasible

    if (trial is None) == (not recommended):
        raise UsageError("give either --trial N or --recommended")
    result = build_result(study, storage)
    rows = {r["trial"]: r for r in result.rows}
    if recommended:
        rec_row = result.recommended
        if rec_row is None:
            raise StudyError(f"study {study.study_name!r} has no feasible front yet: "
                             f"{result.nearest_miss}")
        trial = rec_row["trial"]
    assert trial is not None
    trials = study.get_trials(deepcopy=False)
    match = [t for t in trials if t.number == trial]
    if not match:
        raise StudyError(f"trial {trial} does not exist in study {study.study_name!r} "
                         f"(trials 0..{len(trials) - 1})")
    t = match[0]
    if t.state.name != "COMPLETE" or TRIAL_ATTR not in t.user_attrs:
        raise StudyError(f"trial {trial} is {t.state.name}, not a finished candidate: "
                         "only complete trials can be exported")
    rec = t.user_attrs[TRIAL_ATTR]
    if not is_feasible(rec):
        over = ", ".join(f"{k} {v:+.3g}" for k, v in rec["constraints"].items() if v > 0)
        why = rec.get("skipped") or f"over budget: {over}"
        raise StudyError(f"trial {trial} does not fit the study's budget ({why}); "
                         "pick a trial from `autosq front`")
    return trial, rec, rows.get(trial)


def onnx_bytes_checked(model: torch.nn.Module, inputs: np.ndarray) -> tuple[bytes, dict[str, Any]]:
    """Export with weights inside and a fixed opset, run the ONNX checker's full check, and
    compare ONNX Runtime with torch on ``inputs``; raise if they disagree."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch

    from autosq.onnx_io import export_bytes

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
    got = np.concatenate([sess.run(None, {"input": inputs[i:i + 1]})[0]
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
    return proto.SerializeToString()


def _ort_top1(data: bytes, x: np.ndarray, y: np.ndarray | None,
              reference: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """(top-1 on labels y, or agreement with ``reference`` predictions; predictions)."""
    import numpy as np
    import onnxruntime as ort

    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    pred = np.concatenate([sess.run(None, {"input": x[i:i + 1]})[0].argmax(1)
                           for i in range(len(x))])
    target = y if y is not None else reference
    return (1.0 if target is None else float((pred == target).mean())), pred


def _write_together(files: list[tuple[Path, bytes]]) -> None:
    """Write every file to a temporary sibling first, then rename them all into place."""
    temps: list[tuple[str, Path]] = []
    umask = os.umask(0)
    os.umask(umask)
    try:
        for path, payload in files:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            temps.append((tmp, path))
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a model file is for sharing
        for tmp, path in temps:
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in temps:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise


def export_candidate(study_name: str, storage: str, out: Path, trial: int | None = None,
                     recommended: bool = False, fmt: str = "onnx", quantize: str | None = None,
                     data: str | None = None, epochs: float = 5.0) -> ExportReport:
    """Rebuild a study's candidate, train it when ``data`` is given, and write it to ``out``."""
    import numpy as np

    from autosq import __version__
    from autosq.arch import SqueezeNetConfig
    from autosq.model import build
    from autosq.study import STUDY_ATTR, open_study

    out = Path(out)
    check_destination(out, fmt)
    if quantize not in (None, "int8"):
        raise UsageError(f"--quantize must be int8; got {quantize!r}")
    if quantize and fmt != "onnx":
        raise UsageError("--quantize int8 makes an ONNX model: use --format onnx")
    study = open_study(storage, study_name, None)
    settings = study.user_attrs.get(STUDY_ATTR)
    if settings is None:
        raise StudyError(f"study {study_name!r} in {storage} was not created by autosq")
    number, rec, row = find_trial(study, storage, trial, recommended)
    config = SqueezeNetConfig.from_dict(rec["config"])
    precision = "int8" if quantize else rec["precision"]

    dataset = None
    if data is not None:
        from autosq.data import load_dataset

        dataset = load_dataset(data, config.input_size)
        if dataset.num_classes != config.num_classes:
            raise UsageError(f"{data} has {dataset.num_classes} classes but trial {number} was "
                             f"searched for {config.num_classes}")
    accuracy: dict[str, Any] = {"value": None, "kind": None, "note": "untrained: seeded "
                                f"initial weights (seed {number}); pass --data to train"}
    if dataset is not None:
        from autosq.train import Recipe, fit

        model, result = fit(config, dataset, Recipe(epochs=epochs), seed=number)
        accuracy = {"value": result.val_top1, "kind": "val_top1", "data": dataset.name,
                    "epochs": epochs, "n_train": len(dataset.train_x),
                    "n_val": len(dataset.val_x)}
        x = dataset.val_x.numpy()
        y: np.ndarray | None = dataset.val_y.numpy()
    else:
        model = build(config, seed=number).eval()
        x = np.random.default_rng(number).standard_normal(
            (64, 3, config.input_size, config.input_size)).astype(np.float32)
        y = None
    lat = (row or {}).get("latency_ms"), (row or {}).get("latency_kind")
    if lat[0] is None and rec.get("latency"):
        lat = rec["latency"]["latency_ms"], rec["latency"]["latency_kind"]
    card: dict[str, Any] = {
        "autosq_version": __version__, "study": study_name, "storage": storage,
        "trial": number, "arch_id": rec["arch_id"], "config": config.to_dict(),
        "metaparameters": rec["values"], "precision": precision, "params": rec["params"],
        "macs": rec["macs"], "peak_mem_mb": rec["peak_mem_mb"], "device": settings["device"],
        "budget": settings["budget"], "search_latency_ms": lat[0], "latency_kind": lat[1],
        "search_accuracy": rec.get("accuracy"), "search_accuracy_kind": rec.get("accuracy_kind"),
        "accuracy": accuracy, "format": fmt, "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    if dataset is not None:
        card["input_normalisation"] = {"mean": dataset.describe()["mean"],
                                       "std": dataset.describe()["std"]}
    card_path = out.with_name(out.name + ".json")
    if fmt == "pt":
        import io

        import torch

        buf = io.BytesIO()
        torch.save({"config": config.to_dict(), "state_dict": model.state_dict(),
                    "autosq": {k: card[k] for k in ("study", "trial", "arch_id")}}, buf)
        card["size_bytes"] = len(buf.getvalue())
        card["load_with"] = ("autosq.model.build(SqueezeNetConfig.from_dict(d['config']))"
                             ".load_state_dict(d['state_dict'])")
        _write_together([(out, buf.getvalue()),
                         (card_path, json.dumps(card, indent=2).encode())])
        return ExportReport(out, card_path, card)

    fp32, checks = onnx_bytes_checked(model, x[:16])
    card["checks"] = checks
    card["opset"] = OPSET
    card["input"] = {"name": "input", "shape": [1, 3, config.input_size, config.input_size]}
    card["output"] = {"name": "logits", "shape": [1, config.num_classes]}
    payload = fp32
    if quantize == "int8":
        payload, card["quantization"] = _quantize_report(fp32, x, y, config, settings)
    meta = {"autosq_version": __version__, "config": config.to_dict(), "device":
            settings["device"], "budget": settings["budget"], "latency_ms": lat[0],
            "latency_kind": lat[1], "accuracy": accuracy.get("value"),
            "accuracy_kind": accuracy.get("kind"), "study": study_name, "trial": number,
            "precision": precision}
    payload = _with_metadata(payload, meta)
    card["size_bytes"] = len(payload)
    card["metadata_keys"] = sorted(meta)
    _write_together([(out, payload), (card_path, json.dumps(card, indent=2).encode())])
    return ExportReport(out, card_path, card)


def _quantize_report(fp32: bytes, x: np.ndarray, y: np.ndarray | None,
                     config: SqueezeNetConfig, settings: dict[str, Any]
                     ) -> tuple[bytes, dict[str, Any]]:
    """Quantize (calibrated on real inputs) and measure size, latency, accuracy before/after."""
    from autosq.latency import timer_for
    from autosq.profiles import load_profile
    from autosq.quantize import quantize_bytes

    if y is None:
        from autosq.data import load_dataset

        calib = load_dataset("builtin:shapes", config.input_size).train_x[:64].numpy()
        source = "builtin:shapes (64 training images)"
    else:
        calib = x[:64]
        source = f"{len(calib)} images of the data"
    int8 = quantize_bytes(fp32, config.input_size, calib)
    timer = timer_for(load_profile(settings["device"]))
    before, after = timer.time_many([fp32, int8])
    acc_fp32, pred = _ort_top1(fp32, x, y)
    acc_int8, _ = _ort_top1(int8, x, y, reference=pred)
    kind = "val_top1" if y is not None else "top-1 agreement with fp32 on random inputs"
    return int8, {
        "method": "static, per-channel, QDQ (ONNX Runtime, after quant_pre_process)",
        "calibration": source,
        "size_bytes": {"fp32": len(fp32), "int8": len(int8)},
        "latency_ms": {"fp32": before.latency_ms, "int8": after.latency_ms,
                       "kind": before.latency_kind, "timed": "together, interleaved"},
        "accuracy": {"fp32": acc_fp32 if y is not None else 1.0, "int8": acc_int8,
                     "kind": kind},
    }
