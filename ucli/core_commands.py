"""The commands every installation has: `plugins` and `doctor`."""

from __future__ import annotations

from pathlib import Path

import typer

from ucli import console, options, plugins


def plugins_command(json_out: bool = options.JSON) -> None:
    """List every command group, backend and benchmark, who provides it, and any that failed to load."""
    rows = [p.as_dict() for kind in plugins.GROUPS for p in plugins.discover(kind)]
    if json_out:
        console.print_json(
            {"plugins": rows, "allow_list": sorted(a) if (a := plugins.allow_list()) is not None else None}
        )
        return
    console.out.print(
        console.table(
            "halluc plugins",
            ["kind", "name", "provided by", "status", "error"],
            (
                (r["kind"], r["name"], f"{r['distribution']} {r['version']}", r["status"], r["error"] or "")
                for r in rows
            ),
        )
    )


def doctor_command(
    json_out: bool = options.JSON,
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Also write the snapshot as a JSON artifact."
    ),
    force: bool = options.FORCE,
) -> None:
    """Snapshot this environment: Python, OS, CPU/RAM/disk, torch/CUDA/GPUs, packages, API keys set, models, cache."""
    from ucli.artifacts import check_output_file, write_artifact
    from ucli.doctor import snapshot

    check_output_file(output, force=force)
    snap = snapshot()
    if output is not None:
        write_artifact(output, "halluc.doctor", 1, {"environment": snap})
    if json_out:
        console.print_json(snap)
        return
    console.out.print(console.table("halluc doctor", ["what", "value"], _doctor_rows(snap)))
    if output is not None:
        console.info(f"wrote {output}")


def _doctor_rows(snap: dict) -> list[tuple[str, str]]:
    """The snapshot as the table's what/value rows."""
    t = snap["torch"]
    rows = [
        ("halluc", snap["halluc"]),
        ("python", f"{snap['python']['version']} ({snap['python']['executable']})"),
        ("os", snap["os"]["platform"]),
        ("cpu", f"{snap['cpu']['model']}, {snap['cpu']['logical_cores']} logical cores"),
        ("memory", f"{snap['memory_gib']['available']} / {snap['memory_gib']['total']} GiB available"),
        (
            "disk",
            f"{snap['disk_gib']['free']} / {snap['disk_gib']['total']} GiB free at {snap['disk_gib']['path']}",
        ),
        (
            "torch",
            f"{t.get('version')} (CUDA build {t.get('cuda_build')}, CUDA available: {t.get('cuda_available')})",
        ),
    ]
    rows += [
        (f"gpu {g['index']}", f"{g['name']}, {g['memory_gib']} GiB, capability {g['capability']}")
        for g in t.get("gpus", [])
    ]
    bnb = snap["bitsandbytes"]
    rows.append(
        (
            "bitsandbytes",
            bnb.get("version", "not installed")
            + ("" if bnb.get("import_ok", True) else f" (broken: {bnb['error']})"),
        )
    )
    rows += [(f"package {k}", v or "-") for k, v in snap["packages"].items() if v]
    rows += [(f"key {k}", "set" if v else "-") for k, v in snap["api_keys"].items()]
    rows += [(f"model {k}", v["path"] or "not installed") for k, v in snap["default_models"].items()]
    rows.append(("cache", f"{snap['cache']['path']} ({snap['cache']['size_mib']} MiB)"))
    return rows
