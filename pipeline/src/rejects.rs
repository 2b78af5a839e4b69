//! Rejected rows on disk: for each work unit that rejected rows, one Parquet file with those rows
//! as the transform produced them, and why each one was rejected.
//!
//! ```text
//! <reject_dir>/<run id>/<schema.table>/unit-<k>.parquet
//!   _ferry_table _ferry_target _ferry_split _ferry_row _ferry_column _ferry_reason _ferry_sqlstate
//!   <the transform's output columns, same names and types>
//! ```
//!
//! A unit's file is written under a temporary name, synced and renamed into place before the
//! unit's transaction commits, so a committed unit always has its complete file. Running a unit
//! again (a retry, a resumed run) writes the same name: files are replaced, never duplicated.
//! docs/rejects.md is the user's side of this.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray, UInt32Array, UInt64Array};
use arrow::datatypes::{DataType, Field};
use arrow::error::ArrowError;
use ferry_connectors::staging::types::writable;
use ferry_connectors::yugabyte::{Reject, UnitOutcome};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::config::{Config, TableConfig};
use crate::error::{PipelineError, Result};

/// The columns every reject file starts with, before the row's own columns.
pub const META_COLUMNS: [&str; 7] = [
    "_ferry_table",
    "_ferry_target",
    "_ferry_split",
    "_ferry_row",
    "_ferry_column",
    "_ferry_reason",
    "_ferry_sqlstate",
];

/// Where one table's rejected rows go in one run.
#[derive(Debug, Clone)]
pub struct RejectFiles {
    /// `<reject_dir>/<run id>/<schema.table>`.
    dir: PathBuf,
    /// `keyspace.table`.
    source: String,
    /// `schema.table`.
    target: String,
}

impl RejectFiles {
    /// The reject files of `table` in `config`'s run.
    pub fn new(config: &Config, table: &TableConfig) -> Self {
        let (schema, name) = table.target_parts(&config.target.schema);
        let target = format!("{schema}.{name}");
        let dir = config
            .resolve(table.reject_dir(&config.run))
            .join(path_component(&config.run.id))
            .join(path_component(&target));
        Self {
            dir,
            source: table.source.clone(),
            target,
        }
    }

    /// The table's directory for this run.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of unit `unit`.
    pub fn unit_path(&self, unit: usize) -> PathBuf {
        self.dir.join(format!("unit-{unit}.parquet"))
    }

    /// Writes the rejected rows of `outcome` as unit `unit`'s file, replacing any earlier one;
    /// with no rejects, removes a file an earlier attempt of the unit may have left. Returns the
    /// file written. Call it before the unit commits.
    pub async fn write_unit(&self, unit: usize, outcome: &UnitOutcome) -> Result<Option<PathBuf>> {
        let path = self.unit_path(unit);
        if outcome.rejects.is_empty() {
            return match tokio::fs::remove_file(&path).await {
                Ok(()) => Ok(None),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(write_error(&path, e)),
            };
        }
        let batch = reject_batch(
            &self.source,
            &self.target,
            unit,
            &outcome.rejects,
            &outcome.rejected_rows,
        )
        .map_err(|e| write_error(&path, io::Error::other(e)))?;
        let written = path.clone();
        tokio::task::spawn_blocking(move || write_atomically(&written, &batch))
            .await
            .map_err(|e| PipelineError::Worker(e.to_string()))?
            .map_err(|e| write_error(&path, e))?;
        Ok(Some(path))
    }

    /// Removes every file of this table in this run (`migrate --restart`).
    pub async fn forget(&self) -> Result<()> {
        match tokio::fs::remove_dir_all(&self.dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(write_error(&self.dir, e)),
        }
    }
}

fn write_error(path: &Path, e: io::Error) -> PipelineError {
    PipelineError::Write {
        path: path.to_path_buf(),
        source: io::Error::new(
            e.kind(),
            format!("{e} (rejected rows go to `reject_dir`; see docs/rejects.md)"),
        ),
    }
}

/// A run id or table name as one path component: path separators, control characters and a
/// leading dot become `_`.
fn path_component(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if out.is_empty() || out.starts_with('.') {
        out.insert(0, '_');
    }
    out
}

/// One unit's reject file as a batch: the metadata columns of [`META_COLUMNS`], then the rows
/// (`rows`, concatenated, one per reject) with their own columns.
pub fn reject_batch(
    source: &str,
    target: &str,
    split: usize,
    rejects: &[Reject],
    rows: &[RecordBatch],
) -> std::result::Result<RecordBatch, ArrowError> {
    let Some(first) = rows.first() else {
        return Err(ArrowError::InvalidArgumentError(format!(
            "{} rejects but no rejected rows",
            rejects.len()
        )));
    };
    let values = arrow::compute::concat_batches(first.schema_ref(), rows)?;
    if values.num_rows() != rejects.len() {
        return Err(ArrowError::InvalidArgumentError(format!(
            "{} rejects but {} rejected rows",
            rejects.len(),
            values.num_rows()
        )));
    }
    let n = rejects.len();
    let split = u32::try_from(split).map_err(|_| {
        ArrowError::InvalidArgumentError(format!("split {split} does not fit in 32 bits"))
    })?;
    let text = |f: &dyn Fn(&Reject) -> Option<&str>| -> ArrayRef {
        Arc::new(rejects.iter().map(f).collect::<StringArray>())
    };
    let mut fields = vec![
        Field::new(META_COLUMNS[0], DataType::Utf8, false),
        Field::new(META_COLUMNS[1], DataType::Utf8, false),
        Field::new(META_COLUMNS[2], DataType::UInt32, false),
        Field::new(META_COLUMNS[3], DataType::UInt64, false),
        Field::new(META_COLUMNS[4], DataType::Utf8, true),
        Field::new(META_COLUMNS[5], DataType::Utf8, false),
        Field::new(META_COLUMNS[6], DataType::Utf8, true),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![source; n])),
        Arc::new(StringArray::from(vec![target; n])),
        Arc::new(UInt32Array::from(vec![split; n])),
        Arc::new(UInt64Array::from_iter_values(
            rejects.iter().map(|r| r.row as u64),
        )),
        text(&|r| Some(r.column.as_str()).filter(|c| !c.is_empty())),
        text(&|r| Some(r.reason.as_str())),
        text(&|r| r.sqlstate.as_deref()),
    ];
    for (field, array) in values.schema().fields().iter().zip(values.columns()) {
        let (field, array) = writable(field, array)?;
        fields.push(field.as_ref().clone());
        columns.push(array);
    }
    RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), columns)
}

/// Writes `batch` as Parquet (zstd) to `path`: into a temporary file next to it, synced, then
/// renamed into place, so `path` is either the old file or the complete new one.
fn write_atomically(path: &Path, batch: &RecordBatch) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("a reject file needs a directory"))?;
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map_or_else(|| "unit".into(), |n| n.to_string_lossy().into_owned());
    // A dot name that does not end in .parquet: readers globbing `*.parquet` never see it.
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let file = File::create(&tmp)?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .build();
        let mut writer =
            ArrowWriter::try_new(&file, batch.schema(), Some(props)).map_err(io::Error::other)?;
        writer.write(batch).map_err(io::Error::other)?;
        writer.close().map_err(io::Error::other)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename itself must survive a crash too.
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        std::fs::remove_file(&tmp).ok();
    }
    result
}

#[cfg(test)]
mod tests {
    use arrow::array::{
        Array, AsArray, Int32Array, Int32Builder, IntervalMonthDayNanoArray, ListArray, ListBuilder,
    };
    use arrow::datatypes::{IntervalMonthDayNano, Schema};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;

    fn reject(row: usize, column: &str, sqlstate: Option<&str>) -> Reject {
        Reject {
            row,
            column: column.into(),
            reason: format!("reason {row}"),
            sqlstate: sqlstate.map(Into::into),
        }
    }

    fn rows(ids: &[i32], names: &[Option<&str>]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int32Array::from(ids.to_vec())),
                Arc::new(StringArray::from(names.to_vec())),
            ],
        )
        .expect("valid")
    }

    fn read(path: &Path) -> RecordBatch {
        let file = File::open(path).expect("file");
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("parquet")
            .build()
            .expect("reader");
        let batches: Vec<RecordBatch> = reader.map(|b| b.expect("batch")).collect();
        arrow::compute::concat_batches(batches[0].schema_ref(), &batches).expect("concat")
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "ferry-rejects-{name}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    fn files(config_dir: &Path, toml_run: &str, toml_table: &str) -> RejectFiles {
        let text = format!(
            "[source]\ncontact_points = [\"127.0.0.1:9042\"]\n[target]\n\
             url = \"postgresql://u@127.0.0.1/db\"\nschema = \"app\"\n[run]\n{toml_run}\n\
             [[table]]\nsource = \"ks.items\"\n{toml_table}\n"
        );
        let mut config =
            Config::parse(&text, &config_dir.join("ferry.toml"), &|_| None).expect("valid");
        config.base_dir = config_dir.to_path_buf();
        RejectFiles::new(&config, &config.tables[0])
    }

    #[test]
    fn the_batch_has_the_metadata_then_the_rows() {
        let rejects = [reject(3, "name", None), reject(9, "", Some("23505"))];
        let parts = [rows(&[30], &[Some("a\0b")]), rows(&[90], &[None])];
        let b = reject_batch("ks.items", "app.items", 7, &rejects, &parts).expect("batch");
        let names: Vec<&str> = b
            .schema_ref()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        let mut expected = META_COLUMNS.to_vec();
        expected.extend(["id", "name"]);
        assert_eq!(names, expected);
        assert_eq!(b.num_rows(), 2);
        let col = |name: &str| b.column_by_name(name).expect(name).clone();
        assert_eq!(
            col("_ferry_split")
                .as_primitive::<arrow::datatypes::UInt32Type>()
                .values(),
            &[7, 7]
        );
        assert_eq!(
            col("_ferry_row")
                .as_primitive::<arrow::datatypes::UInt64Type>()
                .values(),
            &[3, 9]
        );
        let column = col("_ferry_column");
        assert_eq!(column.as_string::<i32>().value(0), "name");
        assert!(column.is_null(1), "a refusal naming no column is NULL");
        let state = col("_ferry_sqlstate");
        assert!(state.is_null(0));
        assert_eq!(state.as_string::<i32>().value(1), "23505");
        assert_eq!(col("_ferry_reason").as_string::<i32>().value(1), "reason 9");
        assert_eq!(
            col("id")
                .as_primitive::<arrow::datatypes::Int32Type>()
                .values(),
            &[30, 90]
        );
        assert_eq!(col("name").as_string::<i32>().value(0), "a\0b");
        assert!(col("name").is_null(1));
    }

    #[test]
    fn rows_and_rejects_must_match() {
        let err = reject_batch(
            "ks.t",
            "s.t",
            0,
            &[reject(0, "id", None)],
            &[rows(&[], &[])],
        )
        .expect_err("mismatch");
        assert!(
            err.to_string().contains("1 rejects but 0 rejected rows"),
            "{err}"
        );
        let err =
            reject_batch("ks.t", "s.t", 0, &[reject(0, "id", None)], &[]).expect_err("no rows");
        assert!(err.to_string().contains("no rejected rows"), "{err}");
    }

    #[test]
    fn intervals_are_written_exactly_even_nested() {
        let iv = IntervalMonthDayNano::new(14, -3, 1_000_000_001);
        let flat: ArrayRef = Arc::new(IntervalMonthDayNanoArray::from(vec![Some(iv), None]));
        let mut lists = ListBuilder::new(Int32Builder::new());
        lists.append_value([Some(1), None]);
        lists.append_null();
        let lists: ArrayRef = Arc::new(lists.finish());
        let nested: ArrayRef = Arc::new(
            ListArray::try_new(
                Arc::new(Field::new("item", flat.data_type().clone(), true)),
                arrow::buffer::OffsetBuffer::new(vec![0, 2, 2].into()),
                Arc::clone(&flat),
                None,
            )
            .expect("valid"),
        );
        let schema = Arc::new(Schema::new(vec![
            Field::new("d", flat.data_type().clone(), true),
            Field::new("l", lists.data_type().clone(), true),
            Field::new("ds", nested.data_type().clone(), true),
        ]));
        let batch = RecordBatch::try_new(schema, vec![flat, lists, nested]).expect("valid");
        let rejects = [reject(0, "d", None), reject(1, "d", None)];
        let out = reject_batch("ks.t", "s.t", 0, &rejects, &[batch]).expect("batch");

        let dir = scratch("intervals");
        let path = dir.join("unit-0.parquet");
        write_atomically(&path, &out).expect("written");
        let back = read(&path);
        assert_eq!(back.schema(), out.schema());
        assert_eq!(back, out);
        let d = back.column_by_name("d").expect("d").as_struct();
        assert_eq!(
            d.column(0)
                .as_primitive::<arrow::datatypes::Int32Type>()
                .value(0),
            14
        );
        assert_eq!(
            d.column(1)
                .as_primitive::<arrow::datatypes::Int32Type>()
                .value(0),
            -3
        );
        assert_eq!(
            d.column(2)
                .as_primitive::<arrow::datatypes::Int64Type>()
                .value(0),
            1_000_000_001
        );
        assert!(d.is_null(1));
        let ds = back.column_by_name("ds").expect("ds").as_list::<i32>();
        assert_eq!(ds.value(0).len(), 2);
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn unit_files_are_replaced_and_removed_in_place() {
        let config_dir = scratch("units");
        let files = files(&config_dir, "id = \"run/1\"", "target = \"items_v2\"");
        // Relative to the config file, the run id one component.
        assert_eq!(
            files.dir(),
            config_dir
                .join("rejects")
                .join("run_1")
                .join("app.items_v2")
        );
        let mut outcome = UnitOutcome {
            rows_read: 5,
            rows_written: 3,
            rejects: vec![reject(1, "name", None), reject(4, "name", None)],
            rejected_rows: vec![rows(&[1], &[Some("x")]), rows(&[4], &[Some("y")])],
            ..Default::default()
        };
        let path = files.write_unit(12, &outcome).await.expect("written");
        assert_eq!(path, Some(files.unit_path(12)));
        assert_eq!(read(&files.unit_path(12)).num_rows(), 2);

        // The same unit again, with one reject: the file is replaced, not added to.
        outcome.rejects.truncate(1);
        outcome.rejected_rows.truncate(1);
        files.write_unit(12, &outcome).await.expect("written");
        let back = read(&files.unit_path(12));
        assert_eq!(back.num_rows(), 1);
        assert_eq!(
            back.column_by_name("_ferry_table")
                .expect("table")
                .as_string::<i32>()
                .value(0),
            "ks.items"
        );
        assert_eq!(
            back.column_by_name("_ferry_target")
                .expect("target")
                .as_string::<i32>()
                .value(0),
            "app.items_v2"
        );
        let names: Vec<String> = std::fs::read_dir(files.dir())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["unit-12.parquet"], "no temporary file is left");

        // And with none, the earlier file goes.
        outcome.rejects.clear();
        outcome.rejected_rows.clear();
        assert_eq!(files.write_unit(12, &outcome).await.expect("removed"), None);
        assert!(!files.unit_path(12).exists());
        files.forget().await.expect("forgotten");
        assert!(!files.dir().exists());
        files.forget().await.expect("forgetting twice is fine");
        std::fs::remove_dir_all(config_dir).ok();
    }

    #[tokio::test]
    async fn an_unwritable_reject_dir_is_an_error_naming_the_path_and_the_setting() {
        let config_dir = scratch("unwritable");
        let blocker = config_dir.join("not-a-dir");
        std::fs::write(&blocker, b"x").expect("file");
        let files = files(&config_dir, "reject_dir = \"not-a-dir/sub\"", "");
        let outcome = UnitOutcome {
            rejects: vec![reject(0, "name", None)],
            rejected_rows: vec![rows(&[0], &[None])],
            ..Default::default()
        };
        let err = files
            .write_unit(0, &outcome)
            .await
            .expect_err("a file is in the way");
        let msg = err.to_string();
        assert!(msg.contains("not-a-dir"), "{msg}");
        assert!(msg.contains("reject_dir"), "{msg}");
        std::fs::remove_dir_all(config_dir).ok();
    }

    #[test]
    fn path_components_cannot_escape_the_directory() {
        assert_eq!(path_component("nightly-2"), "nightly-2");
        assert_eq!(path_component("../etc"), "_.._etc");
        assert_eq!(path_component("a\\b\nc"), "a_b_c");
        assert_eq!(path_component(""), "_");
        assert_eq!(path_component("public.Événements"), "public.Événements");
    }
}
