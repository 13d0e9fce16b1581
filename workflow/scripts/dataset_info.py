"""Check that a dataset loads from its data root and record what was found.

Snakemake rule ``dataset_info`` (workflow/rules/data.smk) runs it once per (suite, dataset) before any
training job, so a wrong data root stops the workflow with the loader's message (which names the
expected path and layout) instead of failing every cell. Output JSON: the dataset's
``lmht.data.dataset_info``, train/test sizes, the data root and the size and SHA-256 of the files at
its top level (up to 2 GB in total; larger roots list names and sizes only).

A configuration or data error (a bad setting, a missing or corrupt data file) is written to the log
(and to stderr) as one line naming the key or file, and the job fails with exit status 2; other
exceptions keep their traceback.

Standalone: ``python workflow/scripts/dataset_info.py NAME ROOT OUT.json``.
"""

import dataclasses
import hashlib
import json
import os
import sys
import time
from pathlib import Path

HASH_LIMIT_BYTES = 2 * 1024**3


def file_records(root: str) -> list[dict]:
    """Name, size and (below HASH_LIMIT_BYTES in total) SHA-256 of the files directly under root."""
    if not root or not os.path.isdir(root):
        return []
    files = sorted(p for p in Path(root).iterdir() if p.is_file())
    total = sum(p.stat().st_size for p in files)
    records = []
    for p in files:
        rec = {"name": p.name, "bytes": p.stat().st_size}
        if total <= HASH_LIMIT_BYTES:
            digest = hashlib.sha256()
            with p.open("rb") as fh:
                for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    digest.update(block)
            rec["sha256"] = digest.hexdigest()
        records.append(rec)
    return records


def describe(name: str, root: str, settings: dict, preset: str = "") -> dict:
    """Load both splits the way the runs will (the CLI's resolved config) and describe them."""
    from lmht.build import dataset_options, load_config
    from lmht.data import create_dataset, dataset_info

    start = time.time()
    overrides = [f"{k}={json.dumps(v)}" for k, v in settings.items()] + [f"dataset={name}"]
    if root:
        overrides.append(f"data_root={root}")
    cfg = load_config("direct", preset or None, overrides, check_files=False)
    options = dataset_options(cfg)
    info = dataset_info(name, **options)
    train = create_dataset(name, cfg["data_root"], train=True, **options)
    test = create_dataset(name, cfg["data_root"], train=False, **options)
    source = getattr(test, "source", None)  # the folder read when no root was given (e.g. Debian's)
    return {
        "dataset": name,
        "data_root": os.path.abspath(root) if root else None,
        "source": str(source) if source is not None else None,
        "info": dataclasses.asdict(info),
        "train_size": len(train),
        "test_size": len(test),
        "files": file_records(root),
        "seconds": round(time.time() - start, 3),
    }


def main(name: str, root: str, out: str, settings: dict | None = None, preset: str = "") -> None:
    try:
        record = describe(name, root, settings or {}, preset)
    except (ValueError, OSError) as exc:  # ConfigError, DataFileError, DatasetNotFoundError, unreadable
        message = f"dataset_info: {name}: {' '.join(str(exc).split())}"
        print(message, flush=True)
        if sys.stdout is not sys.__stderr__:
            print(message, file=sys.__stderr__, flush=True)
        raise SystemExit(2) from None
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(out + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, out)
    print(json.dumps({k: record[k] for k in ("dataset", "train_size", "test_size")}))


if "snakemake" in globals():  # run by the dataset_info rule (script: directive)
    smk = globals()["snakemake"]
    sys.path.insert(0, str(Path(smk.scriptdir).parents[1]))  # the repository root
    with open(smk.log[0], "w") as log:
        sys.stdout = sys.stderr = log
        main(
            smk.wildcards.dataset,
            smk.params.data_root,
            smk.output.info,
            smk.params.settings,
            smk.params.preset,
        )
elif __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
