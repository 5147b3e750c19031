#!/usr/bin/env python3
"""python/assemble_wheel.py: writes the wheel of taskfarm-worker-rs, the
package python/taskfarm_worker_rs with libtaskfarm_worker.so.0 inside it, as
the wheel format (PEP 427) lays it out: the files, then .dist-info with
METADATA, WHEEL and RECORD (sha256 of each file). The tag is linux_x86_64;
python/wheel.sh then has auditwheel check the library and tag it manylinux.

    assemble_wheel.py --lib LIBRARY --version VERSION --out DIR

Standard library only. The version is the crate's (Cargo.toml), which is
also what the library's tf_version() says at run time.
"""

import argparse
import base64
import hashlib
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE = "taskfarm_worker_rs"
DISTRIBUTION = "taskfarm-worker-rs"
SONAME = "libtaskfarm_worker.so.0"
TAG = "py3-none-linux_x86_64"

METADATA = """\
Metadata-Version: 2.1
Name: {distribution}
Version: {version}
Summary: The taskfarm-worker 0.4.0 API over libtaskfarm_worker, a Rust taskfarm client with a C ABI
License: GPL-3.0-or-later
Requires-Python: >=3.8
Classifier: Programming Language :: Python :: 3
Classifier: Operating System :: POSIX :: Linux
Classifier: Topic :: System :: Distributed Computing
Description-Content-Type: text/markdown

{description}
"""

DESCRIPTION = """\
A client of the taskfarm server with the API of the Python client
taskfarm-worker 0.4.0 (`TaskFarm`, `TaskFarmWorker`, `tfRuns`), running on
libtaskfarm_worker, which this wheel carries. Switch with one line:

    from taskfarm_worker_rs import TaskFarm, TaskFarmWorker, tfRuns

No compiler or Rust is needed to install it; no dependencies.
"""


def record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lib", required=True, type=Path, help="the built libtaskfarm_worker.so")
    parser.add_argument("--version", required=True)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()

    files = {}
    for source in sorted((HERE / PACKAGE).glob("*.py")):
        files[f"{PACKAGE}/{source.name}"] = source.read_bytes()
    files[f"{PACKAGE}/{SONAME}"] = args.lib.read_bytes()
    info = f"{PACKAGE}-{args.version}.dist-info"
    files[f"{info}/METADATA"] = METADATA.format(
        distribution=DISTRIBUTION, version=args.version, description=DESCRIPTION).encode()
    files[f"{info}/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: taskfarm_worker python/assemble_wheel.py\n"
        f"Root-Is-Purelib: false\nTag: {TAG}\n").encode()
    files[f"{info}/top_level.txt"] = f"{PACKAGE}\n".encode()
    record = [record_line(name, data) for name, data in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()

    args.out.mkdir(parents=True, exist_ok=True)
    wheel = args.out / f"{PACKAGE}-{args.version}-{TAG}.whl"
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            entry = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            entry.external_attr = (0o755 if name.endswith(SONAME) else 0o644) << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(entry, data)
    print(wheel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
