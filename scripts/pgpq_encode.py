"""The pgpq side of `ferry-bench encode`: encode the batches of an Arrow IPC file to binary COPY.

Only the encode loop is timed (time.perf_counter); reading the file, importing pyarrow and
writing the dump are not. Prints one JSON object on stdout.
"""

import argparse
import importlib.metadata
import json
import time

import pyarrow as pa
import pyarrow.ipc as ipc
from pgpq import ArrowToPostgresBinaryEncoder


def peak_rss_mb() -> float:
    """VmHWM of this process (getrusage would report the parent's peak, kept across exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("ipc", help="Arrow IPC file")
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--dump", help="also write the COPY bytes here (untimed)")
    a = p.parse_args()

    with pa.OSFile(a.ipc, "rb") as f:
        reader = ipc.open_file(f)
        schema = reader.schema
        batches = [reader.get_batch(i) for i in range(reader.num_record_batches)]

    seconds = []
    nbytes = 0
    for _ in range(a.runs):
        # Streamed as a COPY sink would: each batch's bytes are counted and let go.
        encoder = ArrowToPostgresBinaryEncoder(schema)
        started = time.perf_counter()
        nbytes = len(encoder.write_header())
        for batch in batches:
            nbytes += len(encoder.write_batch(batch))
        nbytes += len(encoder.finish())
        seconds.append(time.perf_counter() - started)

    if a.dump:
        encoder = ArrowToPostgresBinaryEncoder(schema)
        with open(a.dump, "wb") as f:
            f.write(encoder.write_header())
            for batch in batches:
                f.write(encoder.write_batch(batch))
            f.write(encoder.finish())
    types = [[c.name, c.data_type.ddl()] for c in ArrowToPostgresBinaryEncoder(schema).schema().columns]
    print(
        json.dumps(
            {
                "seconds": seconds,
                "bytes": nbytes,
                "rows": sum(b.num_rows for b in batches),
                "types": types,
                "pgpq": importlib.metadata.version("pgpq"),
                "pyarrow": pa.__version__,
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


if __name__ == "__main__":
    main()
