"""Reads a table staged by `ferry dump` with pyarrow, a Parquet reader that is not Ferry's.

    scripts/pyarrow.sh check_staged_parquet.py <folder of one staged table> [--sample-column C]

Every file the manifest lists must open, hold the rows the manifest says, and have the manifest's
columns, in order. The columns whose Cassandra type has an obvious Parquet counterpart must have
it: timestamp -> timestamp[ms, tz=UTC], date -> date32, time -> time64[ns], uuid/timeuuid ->
16-byte fixed with Parquet's UUID logical type, decimal/varint -> exact text that Python's Decimal
parses, blob -> binary, the integers and floats their widths. Any mismatch exits 1 with every
problem listed. On success, prints one JSON object: rows, files, each column's pyarrow type, and
the values of the --sample-column columns, for the caller to check.
"""

import argparse
import decimal
import json
import pathlib
import sys

import pyarrow as pa
import pyarrow.parquet as pq

# Cassandra type -> the pyarrow type a data engineer expects to read.
EXPECTED = {
    "ascii": pa.string(),
    "text": pa.string(),
    "varchar": pa.string(),
    "inet": pa.string(),
    "varint": pa.string(),
    "decimal": pa.string(),
    "tinyint": pa.int8(),
    "smallint": pa.int16(),
    "int": pa.int32(),
    "bigint": pa.int64(),
    "counter": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "timestamp": pa.timestamp("ms", tz="UTC"),
    "date": pa.date32(),
    "time": pa.time64("ns"),
    "blob": pa.binary(),
    "duration": pa.struct(
        [
            pa.field("months", pa.int32(), nullable=False),
            pa.field("days", pa.int32(), nullable=False),
            pa.field("nanoseconds", pa.int64(), nullable=False),
        ]
    ),
}
UUIDS = {"uuid", "timeuuid"}


def storage(t: pa.DataType) -> pa.DataType:
    """An extension type's storage type (pyarrow reads arrow.uuid as an extension)."""
    return t.storage_type if isinstance(t, pa.BaseExtensionType) else t


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("folder")
    p.add_argument("--sample-column", action="append", default=[])
    args = p.parse_args()
    folder = pathlib.Path(args.folder)
    manifest = json.loads((folder / "_manifest.json").read_text())
    names = [f["name"] for f in manifest["arrow_schema"]["fields"]]
    cql = {c["name"]: c["cql_type"] for c in manifest["cassandra_schema"]["columns"]}
    problems = []
    types = {}
    samples = {c: [] for c in args.sample_column}
    rows = files = 0
    for split in manifest["splits"]:
        if not split["done"]:
            problems.append(f"split {split['index']} is not done")
            continue
        for entry in split["files"]:
            path = folder / entry["path"]
            files += 1
            parquet = pq.ParquetFile(path)
            table = parquet.read()
            # Leaf columns by path: a top-level primitive column is the leaf of its own name.
            leaves = parquet.schema
            logical = {leaves.column(j).path: str(leaves.column(j).logical_type) for j in range(len(leaves))}
            rows += table.num_rows
            if table.num_rows != entry["rows"]:
                problems.append(f"{path}: {table.num_rows} rows, the manifest says {entry['rows']}")
            if table.column_names != names:
                problems.append(f"{path}: columns {table.column_names}, the manifest {names}")
                continue
            for i, field in enumerate(table.schema):
                types.setdefault(field.name, str(field.type))
                ty = cql.get(field.name)
                want = EXPECTED.get(ty)
                if want is not None and storage(field.type) != want:
                    problems.append(f"{path}: {field.name} ({ty}) is {field.type}, expected {want}")
                if ty in UUIDS:
                    if storage(field.type) != pa.binary(16):
                        problems.append(f"{path}: {field.name} ({ty}) is {field.type}, not 16-byte fixed")
                    annotated = logical.get(field.name, "none")
                    if "UUID" not in annotated.upper():
                        problems.append(f"{path}: {field.name} ({ty}) has logical type {annotated}, not UUID")
                if ty in ("decimal", "varint"):
                    for v in table.column(i).to_pylist():
                        if v is not None:
                            try:
                                decimal.Decimal(v)
                            except decimal.InvalidOperation:
                                problems.append(f"{path}: {field.name} holds {v!r}, not an exact number")
            for c in samples:
                samples[c].extend(
                    v if isinstance(v, (str, int, float, bool)) or v is None else str(v)
                    for v in table.column(c).to_pylist()
                )
    if rows != manifest["rows"]:
        problems.append(f"{rows} rows in the files, the manifest says {manifest['rows']}")
    if problems:
        print("pyarrow disagrees with the staged files:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(
        json.dumps(
            {"pyarrow": pa.__version__, "rows": rows, "files": files, "types": types, "samples": samples}
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
