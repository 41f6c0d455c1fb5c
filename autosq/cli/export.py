"""``autosq export``: write the chosen candidate as a deployable, checked file with its card."""

from __future__ import annotations

from pathlib import Path

import typer

from autosq.cli._options import (
    between,
    bits_option,
    check_output,
    check_threads,
    check_train_device,
    density_option,
    invoked_args,
    one_of,
    positive,
    pretrained_option,
    profiles_option,
    storage_option,
    teacher_option,
    threads_option,
    train_device_option,
)
from autosq.compress.schedule import DEFAULT_BITS

FORMATS = ("onnx", "pt")


def export(
    study: str = typer.Option(..., "--study", help="Study name."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file (.onnx, or .pt)."),
    trial: int | None = typer.Option(None, "--trial", help="Trial number to export."),
    recommended: bool = typer.Option(False, "--recommended", help="Export the front's "
                                     "recommended member (the knee)."),
    fmt: str = typer.Option("onnx", "--format", callback=one_of(FORMATS),
                            help="onnx (self-contained, checked) or pt (state_dict + config)."),
    quantize: str | None = typer.Option(None, "--quantize", callback=one_of(("int8",)),
                                        help="int8: static per-channel QDQ, calibrated on real "
                                        "images."),
    data: str | None = typer.Option(None, "--data", help="Train on this data (folder or "
                                    "builtin:shapes); default: the study's own data when it "
                                    "was searched with data, else none (untrained)."),
    epochs: float | None = typer.Option(None, "--epochs", callback=positive(),
                                        help="Training epochs (default: 4 times the budget "
                                        "behind the trial's accuracy)."),
    untrained: bool = typer.Option(False, "--untrained", help="Export the seeded initial "
                                   "weights, even for a study searched with data."),
    threads: int | None = threads_option(),
    train_device: str = train_device_option(),
    pretrained: str | None = pretrained_option(),
    teacher: str | None = teacher_option(),
    storage: str = storage_option(),
    profiles: list[Path] = profiles_option(),
    compress: bool = typer.Option(False, "--compress", help="Deep Compression after training "
                                  "(needs --data): prune, retrain, cluster, retrain the "
                                  "centroids; writes OUT's .dcz beside it and the stage table."),
    bits: str = bits_option(str(DEFAULT_BITS), "With --compress: bits per shared-weight code "
                            "(the same default as autosq compress)."),
    density: float = density_option("With --compress: share of weights kept (default 1/3)."),
    compress_steps: int = typer.Option(200, "--compress-steps", callback=between(1, 10**6),
                                       help="With --compress: retraining steps per stage."),
) -> None:
    """Rebuild a trial's model, (train it,) check it and write it with metadata and a card."""
    from autosq.cli._paths import refuse_inputs_as_outputs
    from autosq.errors import UsageError
    from autosq.outputs.export import check_destination, export_candidate
    from autosq.outputs.model_files import card_path

    if (trial is None) == (not recommended):
        raise UsageError("give either --trial N or --recommended")
    suffix = ".onnx" if fmt == "onnx" else ".pt"
    if out.suffix.lower() != suffix:
        raise UsageError(f"--out must end with {suffix} for --format {fmt}; got {out}")
    if quantize and fmt != "onnx":
        raise UsageError("--quantize int8 makes an ONNX model: use --format onnx")
    if untrained and (data is not None or epochs is not None or compress
                      or pretrained is not None or teacher is not None):
        raise UsageError("--untrained exports the seeded initial weights: it does not take "
                         "--data, --epochs, --compress, --pretrained or --teacher")
    if compress and quantize:
        raise UsageError("--compress retrains the network: it does not combine with "
                         "--quantize (its codes are the quantization)")
    check_threads(threads)
    check_train_device(train_device)
    if (compress or epochs is not None or teacher is not None) and data is None:
        from autosq.searching.records import read_settings
        from autosq.searching.storage import load_study

        if read_settings(load_study(storage, study)).accuracy.data is None:
            flag = ("--compress retrains the network" if compress else
                    "--epochs sets the training before export" if epochs is not None else
                    "--teacher guides the training before export")
            raise UsageError(f"{flag}: it needs --data (study {study!r} was searched without "
                             "data)")
    given = [f for f in ("--bits", "--density", "--compress-steps")
             if any(a == f or a.startswith(f"{f}=") for a in invoked_args())]
    if given and not compress:
        raise UsageError(f"{given[0]} sets Deep Compression: it needs --compress")
    outputs = {"--out": out, "--out (its card)": card_path(out)}
    if compress:
        outputs["--out (its .dcz)"] = out.with_suffix(".dcz")
    for flag, path in outputs.items():  # all of them writable before the training starts
        check_output(path, path.suffix.lower(), flag)
    check_destination(out, fmt)
    refuse_inputs_as_outputs(outputs, {"the data (--data)": data}, storage)
    from autosq.cli.progress import training_progress

    with training_progress(f"training trial {trial if trial is not None else 'recommended'} "
                           "for export") as on_train:
        report = export_candidate(study=study, out=out, storage=storage, trial=trial,
                                  recommended=recommended, fmt=fmt, quantize=quantize, data=data,
                                  epochs=epochs, untrained=untrained, threads=threads,
                                  train_device=train_device,
                                  pretrained=pretrained, teacher=teacher,
                                  profiles=profiles, compress=compress, bits=int(bits),
                                  density=density, compress_steps=compress_steps,
                                  on_train=on_train)
    card = report.card
    acc = card["accuracy"]
    typer.echo(f"wrote {report.path} ({card['size_bytes']:,} bytes, trial {card['trial']}, "
               f"{card['precision']}) and its card {report.card_path}")
    if acc["value"] is not None:
        onnx = acc.get("onnx_val_top1")
        check = "" if onnx is None else f"; the ONNX file itself: {onnx:.4f}"
        typer.echo(f"accuracy {acc['value']:.4f} {acc['kind']}{check} ({acc['note']}: "
                   f"{acc['epochs']:.3g} epochs, {acc['threads']} threads); trial "
                   f"{card['trial']} scored {acc['trial_accuracy']:.4g} "
                   f"{acc['trial_accuracy_kind']} in the search")
        if acc.get("before_training") is not None:
            typer.echo(f"  before fine-tuning (inherited weights): {acc['before_training']:.4f}")
    else:
        typer.echo(f"accuracy: {acc['note'].replace('pass data', 'pass --data')}")
    inherited = card.get("lineage", {}).get("pretrained")
    if inherited:
        how = "exactly" if inherited["exact"] else f"{inherited['share_inherited']:.0%} of its " \
            "conv weights"
        typer.echo(f"weights: inherited {how} from {inherited['source']} (SHA-256 "
                   f"{inherited['sha256'][:12]}...)")
    norm = card.get("input_normalisation")
    if norm:
        def three(values: list[float]) -> str:
            return ", ".join(f"{v:.4g}" for v in values)

        typer.echo(f"inputs: RGB in [0, 1], minus mean ({three(norm['mean'])}), divided by std "
                   f"({three(norm['std'])}) ({norm.get('name') or 'see the card'})")
    if "checks" in card:
        c = card["checks"]
        typer.echo(f"checks: {c['onnx_checker']}; ONNX Runtime vs torch max abs diff "
                   f"{c['max_abs_diff_vs_torch']:.2g}, top-1 agreement "
                   f"{c['top1_agreement_vs_torch']:.0%}")
    dc = card.get("deep_compression")
    if dc:
        typer.echo(f"Deep Compression ({dc['bits']} bits, {dc['density']:.0%} of the weights "
                   f"kept, {dc['retrain_steps']} retraining steps a stage) -> {dc['container']}")
        typer.echo(f"  {'stage':44} {'val_top1':>8} {'bytes':>11} {'vs fp32':>8} "
                   f"{'vs AlexNet 240 MB':>18}")
        for row in dc["stages"]:
            typer.echo(f"  {row['stage']:44} {row['val_top1']:8.3f} {row['size_bytes']:11,} "
                       f"{row['vs_fp32']:7.1f}x {row['vs_alexnet']:17.0f}x")
    q = card.get("quantization")
    if q:
        s, lat, a = q["size_bytes"], q["latency_ms"], q["accuracy"]
        typer.echo(f"int8: size {s['fp32']:,} -> {s['int8']:,} bytes ({s['int8'] / s['fp32']:.0%})"
                   f"; latency {lat['fp32']:.2f} -> {lat['int8']:.2f} ms {lat['kind']}; "
                   f"{a['kind']} {a['fp32']:.3f} -> {a['int8']:.3f}")
        if q.get("slower_than_fp32"):
            typer.echo(f"note: int8 is slower than fp32 on {card['device']} "
                       f"({lat['int8']:.2f} against {lat['fp32']:.2f} ms): fp32 ships faster "
                       "there (export without --quantize, and from an fp32 trial)")
