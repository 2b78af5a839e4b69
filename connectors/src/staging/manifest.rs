//! `_manifest.json`: what a staged table holds. A split is staged when, and only when, the
//! manifest lists it as done; its files are then complete and hold exactly its rows.
//!
//! ```text
//! {
//!   "format": "ferry-staging", "format_version": 1, "ferry_version": "0.1.0",
//!   "source": "ks.events",
//!   "cassandra_schema": { "keyspace": …, "table": …, "columns": [{ "name", "kind", "position",
//!                         "cql_type", "descending" }, …] },
//!   "arrow_schema": { "ipc": "<base64 Arrow IPC schema>", "fields": [{ "name", "type", "nullable" }] },
//!   "transform": null | { "file": "events.sql", "sql": "SELECT …" },   applied at dump time?
//!   "content_hash": "ferry-xxh3-cells-v1",                               how split hashes are made
//!   "whole_table": false,                                               one unit for the whole ring?
//!   "complete": true,                                                   every split done?
//!   "rows": …, "bytes": …,                                              of the done splits
//!   "splits": [{ "index": 0, "token_ranges": [{ "start", "end" }], "done": true,
//!                "rows": …, "bytes": …, "content_hash": "0123456789abcdef",
//!                "files": [{ "path": "split-00000-000.parquet", "rows": …, "bytes": … }] }, …]
//! }
//! ```
//!
//! `arrow_schema.ipc` is the schema the rows have (the one `load` and `query` present); the files
//! hold it as Parquet can store it (see [`super::types`]). `fields` repeats it for people.

use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use super::hash::HASH_ALGORITHM;
use crate::cassandra::{ColumnKind, SourceTable, TokenRange};
use crate::error::{ConnectorError, Result};

/// The manifest's file name in a staged table's folder.
pub const MANIFEST_FILE: &str = "_manifest.json";
/// The `format` of every manifest.
pub const FORMAT: &str = "ferry-staging";
/// The manifest format this build writes, and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

/// A staged table's manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    /// The Ferry version that wrote the manifest last.
    pub ferry_version: String,
    /// `keyspace.table`.
    pub source: String,
    pub cassandra_schema: CassandraSchema,
    pub arrow_schema: ArrowSchema,
    /// The transform applied at dump time; `null` when the rows are the source's columns.
    pub transform: Option<TransformRecord>,
    /// How `splits[].content_hash` is computed (docs/staging.md).
    pub content_hash: String,
    /// Whether the transform regroups rows across splits, so the table was dumped as one unit.
    pub whole_table: bool,
    /// Whether every split is done.
    pub complete: bool,
    /// Rows and bytes of the done splits.
    pub rows: u64,
    pub bytes: u64,
    /// Every planned split, in order; index k is split k.
    pub splits: Vec<SplitEntry>,
}

/// The Cassandra table the rows came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CassandraSchema {
    pub keyspace: String,
    pub table: String,
    pub columns: Vec<CassandraColumn>,
}

/// One Cassandra column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CassandraColumn {
    pub name: String,
    /// `partition_key`, `clustering`, `static`, `regular`, `writetime` or `ttl`.
    pub kind: String,
    /// Position in the partition or clustering key.
    pub position: i32,
    pub cql_type: String,
    /// Clustering order, for clustering columns.
    pub descending: bool,
}

impl CassandraSchema {
    /// The schema of `source`.
    pub fn of(source: &SourceTable) -> Self {
        Self {
            keyspace: source.keyspace.clone(),
            table: source.table.clone(),
            columns: source
                .columns
                .iter()
                .map(|c| CassandraColumn {
                    name: c.name.clone(),
                    kind: match &c.kind {
                        ColumnKind::PartitionKey => "partition_key",
                        ColumnKind::Clustering => "clustering",
                        ColumnKind::Static => "static",
                        ColumnKind::Regular => "regular",
                        ColumnKind::WriteTime { .. } => "writetime",
                        ColumnKind::Ttl { .. } => "ttl",
                    }
                    .to_string(),
                    position: c.position,
                    cql_type: c.cql_type.to_string(),
                    descending: c.descending,
                })
                .collect(),
        }
    }

    /// The partition key columns, in key order.
    pub fn partition_key(&self) -> Vec<&CassandraColumn> {
        self.key("partition_key")
    }

    /// The clustering columns, in key order.
    pub fn clustering(&self) -> Vec<&CassandraColumn> {
        self.key("clustering")
    }

    fn key(&self, kind: &str) -> Vec<&CassandraColumn> {
        let mut columns: Vec<&CassandraColumn> =
            self.columns.iter().filter(|c| c.kind == kind).collect();
        columns.sort_by_key(|c| c.position);
        columns
    }
}

/// The rows' Arrow schema: Arrow IPC, base64, and a readable copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArrowSchema {
    /// The schema as an Arrow IPC `Schema` flatbuffer, base64 (standard alphabet, padded).
    pub ipc: String,
    /// Name, type and nullability of each column, for people and other tools.
    pub fields: Vec<ArrowField>,
}

/// One column of [`ArrowSchema::fields`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArrowField {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: bool,
}

impl ArrowSchema {
    /// `schema`, serialized.
    pub fn of(schema: &Schema) -> Self {
        let fbb = arrow::ipc::convert::IpcSchemaEncoder::new().schema_to_fb(schema);
        Self {
            ipc: BASE64.encode(fbb.finished_data()),
            fields: schema
                .fields()
                .iter()
                .map(|f| ArrowField {
                    name: f.name().clone(),
                    data_type: f.data_type().to_string(),
                    nullable: f.is_nullable(),
                })
                .collect(),
        }
    }

    /// The schema back; `path` names the manifest in errors.
    pub fn decode(&self, path: &str) -> Result<SchemaRef> {
        let corrupt = |message: String| ConnectorError::Staged {
            path: path.to_string(),
            message: format!("arrow_schema.ipc is not an Arrow IPC schema: {message}"),
        };
        let bytes = BASE64
            .decode(&self.ipc)
            .map_err(|e| corrupt(e.to_string()))?;
        let fb = arrow::ipc::root_as_schema(&bytes).map_err(|e| corrupt(e.to_string()))?;
        Ok(Arc::new(arrow::ipc::convert::fb_to_schema(fb)))
    }
}

/// The transform a dump applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformRecord {
    /// The file, as the config named it.
    pub file: String,
    /// Its SQL at dump time.
    pub sql: String,
}

/// One planned split and, once it is done, what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitEntry {
    pub index: usize,
    /// The Cassandra token ranges `(start, end]` the split read.
    pub token_ranges: Vec<TokenRange>,
    pub done: bool,
    #[serde(default)]
    pub rows: u64,
    #[serde(default)]
    pub bytes: u64,
    /// The order-independent hash of the split's rows, 16 hex digits ([`HASH_ALGORITHM`]).
    #[serde(default)]
    pub content_hash: Option<String>,
    /// The split's files, in order; none when the split has no rows.
    #[serde(default)]
    pub files: Vec<StagedFile>,
}

/// One Parquet file of a split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StagedFile {
    /// The file name, relative to the table's folder.
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
}

/// What a finished split holds, to record in the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedSplit {
    pub rows: u64,
    pub bytes: u64,
    pub content_hash: String,
    pub files: Vec<StagedFile>,
}

impl Manifest {
    /// A manifest with every split planned and none done.
    pub fn new(
        source: &SourceTable,
        schema: &Schema,
        transform: Option<TransformRecord>,
        whole_table: bool,
        splits: Vec<Vec<TokenRange>>,
    ) -> Self {
        Self {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            ferry_version: env!("CARGO_PKG_VERSION").into(),
            source: source.qualified_name(),
            cassandra_schema: CassandraSchema::of(source),
            arrow_schema: ArrowSchema::of(schema),
            transform,
            content_hash: HASH_ALGORITHM.into(),
            whole_table,
            complete: splits.is_empty(),
            rows: 0,
            bytes: 0,
            splits: splits
                .into_iter()
                .enumerate()
                .map(|(index, token_ranges)| SplitEntry {
                    index,
                    token_ranges,
                    done: false,
                    rows: 0,
                    bytes: 0,
                    content_hash: None,
                    files: Vec::new(),
                })
                .collect(),
        }
    }

    /// Records split `index` as done with what it holds.
    pub fn split_done(&mut self, index: usize, staged: StagedSplit) {
        if let Some(entry) = self.splits.get_mut(index) {
            entry.done = true;
            entry.rows = staged.rows;
            entry.bytes = staged.bytes;
            entry.content_hash = Some(staged.content_hash);
            entry.files = staged.files;
        }
        self.rows = self.splits.iter().map(|s| s.rows).sum();
        self.bytes = self.splits.iter().map(|s| s.bytes).sum();
        self.complete = self.splits.iter().all(|s| s.done);
        self.ferry_version = env!("CARGO_PKG_VERSION").into();
    }

    /// The file names of every done split.
    pub fn files(&self) -> impl Iterator<Item = &StagedFile> {
        self.splits
            .iter()
            .filter(|s| s.done)
            .flat_map(|s| s.files.iter())
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("a manifest always serializes");
        out.push(b'\n');
        out
    }

    /// Parses a manifest; `path` names it in errors. A manifest of a newer format is refused
    /// before anything else is read from it.
    pub fn from_json(bytes: &[u8], path: &str) -> Result<Self> {
        let bad = |message: String| ConnectorError::Staged {
            path: path.to_string(),
            message,
        };
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
            bad(format!(
                "not valid JSON ({e}); the file is corrupt or truncated"
            ))
        })?;
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(bad(format!(
                "not a Ferry staging manifest (no \"format\": \"{FORMAT}\")"
            )));
        }
        let version = value
            .get("format_version")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| bad("no format_version".into()))?;
        if version > u64::from(FORMAT_VERSION) {
            return Err(bad(format!(
                "format_version {version} is newer than this Ferry reads ({FORMAT_VERSION}); \
                 load it with the Ferry version that dumped it ({}) or newer",
                value
                    .get("ferry_version")
                    .and_then(|v| v.as_str())
                    .unwrap_or("unknown")
            )));
        }
        let manifest: Manifest =
            serde_json::from_value(value).map_err(|e| bad(format!("not a valid manifest: {e}")))?;
        manifest.check(path)?;
        Ok(manifest)
    }

    /// Checks what JSON cannot: split k at index k, totals that add up, hashes of this format.
    fn check(&self, path: &str) -> Result<()> {
        let bad = |message: String| ConnectorError::Staged {
            path: path.to_string(),
            message,
        };
        if self.content_hash != HASH_ALGORITHM {
            return Err(bad(format!(
                "content_hash {:?} is not one this Ferry computes ({HASH_ALGORITHM})",
                self.content_hash
            )));
        }
        for (k, split) in self.splits.iter().enumerate() {
            if split.index != k {
                return Err(bad(format!("splits[{k}] has index {}", split.index)));
            }
            if split.done {
                let rows: u64 = split.files.iter().map(|f| f.rows).sum();
                let bytes: u64 = split.files.iter().map(|f| f.bytes).sum();
                if rows != split.rows || bytes != split.bytes {
                    return Err(bad(format!(
                        "split {k}: its files hold {rows} rows and {bytes} bytes, the split says \
                         {} and {}",
                        split.rows, split.bytes
                    )));
                }
                if split.content_hash.is_none() {
                    return Err(bad(format!("split {k} is done but has no content_hash")));
                }
            }
        }
        if self.complete != self.splits.iter().all(|s| s.done) {
            return Err(bad(
                "\"complete\" disagrees with the splits' \"done\" flags".into(),
            ));
        }
        Ok(())
    }

    /// How `self`, a manifest found in place, differs from `planned`, the manifest this dump
    /// would start: the source, its schema, the row schema or the transform. `None` when a
    /// dump may resume it. `path` names the manifest in errors.
    pub fn difference(&self, planned: &Manifest, path: &str) -> Result<Option<String>> {
        if self.source != planned.source {
            return Ok(Some(format!(
                "it holds {}, not {}",
                self.source, planned.source
            )));
        }
        if self.cassandra_schema != planned.cassandra_schema {
            return Ok(Some(
                "the Cassandra table's schema has changed since".into(),
            ));
        }
        if self.transform != planned.transform {
            let name = |t: &Option<TransformRecord>| match t {
                None => "no transform".to_string(),
                Some(t) => format!("transform {}", t.file),
            };
            let changed = match (&self.transform, &planned.transform) {
                (Some(a), Some(b)) if a.file == b.file => format!("{} has changed since", a.file),
                _ => format!(
                    "it was dumped with {}, this dump applies {}",
                    name(&self.transform),
                    name(&planned.transform)
                ),
            };
            return Ok(Some(changed));
        }
        // Decoded: field metadata is a map, so the same schema may serialize in another order.
        if self.arrow_schema.decode(path)? != planned.arrow_schema.decode(path)? {
            return Ok(Some("the rows' Arrow schema has changed since".into()));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::{DataType, Field};

    use super::*;
    use crate::cassandra::SourceColumn;
    use ferry_sql::types::{CqlType, NativeType};

    fn source() -> SourceTable {
        SourceTable {
            keyspace: "ks".into(),
            table: "events".into(),
            columns: vec![
                SourceColumn {
                    name: "id".into(),
                    kind: ColumnKind::PartitionKey,
                    position: 0,
                    cql_type: CqlType::Native(NativeType::Int),
                    descending: false,
                },
                SourceColumn {
                    name: "at".into(),
                    kind: ColumnKind::Clustering,
                    position: 0,
                    cql_type: CqlType::Native(NativeType::Timestamp),
                    descending: true,
                },
            ],
        }
    }

    fn manifest() -> Manifest {
        let schema = source().arrow_schema();
        let ranges = vec![
            vec![TokenRange {
                start: i64::MIN,
                end: 0,
            }],
            vec![TokenRange {
                start: 0,
                end: i64::MAX,
            }],
        ];
        Manifest::new(&source(), &schema, None, false, ranges)
    }

    #[test]
    fn round_trips_and_tracks_done_splits() {
        let mut m = manifest();
        assert!(!m.complete);
        m.split_done(
            1,
            StagedSplit {
                rows: 3,
                bytes: 100,
                content_hash: "00000000000000ff".into(),
                files: vec![StagedFile {
                    path: "split-00001-000.parquet".into(),
                    rows: 3,
                    bytes: 100,
                }],
            },
        );
        assert_eq!((m.rows, m.bytes, m.complete), (3, 100, false));
        let back = Manifest::from_json(&m.to_json(), "m.json").expect("parses");
        assert_eq!(back, m);
        assert_eq!(
            back.arrow_schema.decode("m.json").expect("schema"),
            source().arrow_schema()
        );
        let names: Vec<&str> = back.files().map(|f| f.path.as_str()).collect();
        assert_eq!(names, ["split-00001-000.parquet"]);
        assert_eq!(back.cassandra_schema.clustering()[0].name, "at");
    }

    #[test]
    fn bad_manifests_are_named_with_the_reason() {
        let err = Manifest::from_json(b"{\"format\": \"ferry-sta", "x/_manifest.json")
            .expect_err("truncated");
        let msg = err.to_string();
        assert!(
            msg.contains("x/_manifest.json") && msg.contains("corrupt"),
            "{msg}"
        );

        let mut newer: serde_json::Value =
            serde_json::from_slice(&manifest().to_json()).expect("json");
        newer["format_version"] = serde_json::json!(FORMAT_VERSION + 1);
        newer["something_new"] = serde_json::json!(true);
        let err = Manifest::from_json(newer.to_string().as_bytes(), "m.json").expect_err("newer");
        assert!(
            err.to_string().contains("newer than this Ferry reads"),
            "{err}"
        );

        let mut wrong = manifest();
        wrong.splits[1].index = 5;
        let err = Manifest::from_json(&wrong.to_json(), "m.json").expect_err("index");
        assert!(err.to_string().contains("splits[1] has index 5"), "{err}");

        let err = Manifest::from_json(b"{\"a\": 1}", "m.json").expect_err("not ours");
        assert!(
            err.to_string().contains("not a Ferry staging manifest"),
            "{err}"
        );
    }

    #[test]
    fn differences_are_described() {
        let m = manifest();
        assert_eq!(m.difference(&m, "m.json").expect("decodes"), None);
        let mut t = m.clone();
        t.transform = Some(TransformRecord {
            file: "e.sql".into(),
            sql: "SELECT 1".into(),
        });
        let why = m
            .difference(&t, "m.json")
            .expect("decodes")
            .expect("differs");
        assert!(
            why.contains("no transform") && why.contains("e.sql"),
            "{why}"
        );
        let mut s = m.clone();
        s.arrow_schema = ArrowSchema::of(&Schema::new(vec![Field::new("x", DataType::Int8, true)]));
        assert!(m.difference(&s, "m.json").expect("decodes").is_some());
    }
}
