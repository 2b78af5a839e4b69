//! Reading the target: `COPY (SELECT <output columns> FROM t [WHERE …]) TO STDOUT (FORMAT binary)`
//! over several connections at once, each over its own part of the table.
//!
//! On PostgreSQL the parts are ranges of heap pages (`ctid` ranges, a TID range scan from
//! PostgreSQL 14 on); the last part is open-ended, so pages added meanwhile are read too. On
//! YugabyteDB, whose tables have no heap pages, the table is read in one stream.
//!
//! Tuples are cut out of the stream in blocks of about 1 MiB and handed, block by block, to a
//! [`RowSink`] on the rayon pool, so no hashing runs on the async runtime's threads.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use ferry_connectors::ConnectorError;
use ferry_connectors::yugabyte::{Placement, TargetTable, quote_ident};
use futures::StreamExt;

use super::digest::Tuple;
use crate::error::{PipelineError, Result};

/// Bytes of tuples handed to the sink at once.
const BLOCK: usize = 1 << 20;

/// Consumes rows, one tuple at a time; one per reader, merged at the end.
pub trait RowSink: Send + 'static {
    fn row(&mut self, row: &[u8], tuple: &Tuple);
}

/// Runs `f` on the rayon pool and waits for it without blocking the runtime.
pub async fn on_rayon<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = tokio::sync::oneshot::channel();
    rayon::spawn(move || {
        let _ = tx.send(f());
    });
    rx.await
        .expect("the rayon task always sends unless it panicked, which is a bug")
}

/// Feeds every tuple of `block` (whole tuples only) to `sink`.
pub(super) fn feed<S: RowSink>(sink: &mut S, block: &[u8]) -> std::result::Result<(), String> {
    let mut tuple = Tuple::default();
    let mut at = 0;
    while at < block.len() {
        match tuple.read(&block[at..])? {
            Some(len) => {
                sink.row(&block[at..at + len], &tuple);
                at += len;
            }
            None => return Err("a tuple is cut short".into()),
        }
    }
    Ok(())
}

/// How the target table is read.
#[derive(Debug, Clone)]
pub struct TargetRead {
    /// `SELECT "a", "b" FROM "s"."t"`.
    select: String,
    /// The `--where` predicate, rendered for the target.
    filter: Option<String>,
}

impl TargetRead {
    pub fn new(target: &TargetTable, columns: &[String], filter: Option<String>) -> Self {
        let list: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
        Self {
            select: format!("SELECT {} FROM {}", list.join(", "), target.qualified()),
            filter,
        }
    }

    /// The COPY statements, one per part, for `parts` parts of a table of `pages` pages (`None`:
    /// no page ranges, one part).
    fn statements(&self, pages: Option<i64>, parts: usize) -> Vec<String> {
        let with = |cond: Option<String>| {
            let conds: Vec<String> = self.filter.iter().cloned().chain(cond).collect();
            let sql = if conds.is_empty() {
                self.select.clone()
            } else {
                format!("{} WHERE {}", self.select, conds.join(" AND "))
            };
            format!("COPY ({sql}) TO STDOUT (FORMAT binary)")
        };
        let parts = parts.max(1) as i64;
        match pages {
            Some(pages) if parts > 1 && pages >= parts => {
                let step = pages / parts;
                (0..parts)
                    .map(|i| {
                        let lo = (i > 0).then(|| format!("ctid >= '({},0)'::tid", i * step));
                        let hi = (i < parts - 1)
                            .then(|| format!("ctid < '({},0)'::tid", (i + 1) * step));
                        let cond: Vec<String> = lo.into_iter().chain(hi).collect();
                        with(Some(cond.join(" AND ")).filter(|c| !c.is_empty()))
                    })
                    .collect()
            }
            _ => vec![with(None)],
        }
    }

    /// Reads the whole (filtered) table over up to `parallel` connections, each feeding a sink
    /// made by `make`; returns the sinks.
    pub async fn read<S: RowSink>(
        &self,
        placement: &Arc<Placement>,
        target: &TargetTable,
        parallel: usize,
        make: impl Fn() -> S,
    ) -> Result<Vec<S>> {
        let client = placement.connect().await?;
        // YugabyteDB tables have no heap pages to split the read by; a server that cannot say
        // how many pages the table has is read in one stream too.
        let pages: Option<i64> = match client
            .query_one(
                "SELECT position('-YB-' in version()) > 0, \
                 pg_relation_size(to_regclass($1)) / current_setting('block_size')::bigint",
                &[&target.qualified()],
            )
            .await
        {
            Ok(row) if !row.get::<_, bool>(0) => Some(row.get(1)),
            _ => None,
        };
        // About 8 MiB of pages per part at least, so small tables are one stream.
        let parts = pages.map_or(1, |p| parallel.min((p / 1024).max(1) as usize));
        let statements = self.statements(pages, parts);
        drop(client);
        let tasks: Vec<_> = statements
            .into_iter()
            .map(|sql| {
                let placement = Arc::clone(placement);
                let sink = make();
                tokio::spawn(async move { read_part(&placement, &sql, sink).await })
            })
            .collect();
        let mut sinks = Vec::with_capacity(tasks.len());
        for task in tasks {
            sinks.push(
                task.await
                    .map_err(|e| PipelineError::Worker(e.to_string()))??,
            );
        }
        Ok(sinks)
    }
}

async fn read_part<S: RowSink>(placement: &Arc<Placement>, sql: &str, mut sink: S) -> Result<S> {
    let client = placement.connect().await?;
    let err = |source| ConnectorError::Postgres {
        what: format!("reading the target ({sql})"),
        source,
    };
    let stream = client.copy_out(sql).await.map_err(err)?;
    let mut stream = std::pin::pin!(stream);
    let mut buf = BytesMut::with_capacity(2 * BLOCK);
    let mut header_done = false;
    let mut tuple = Tuple::default();
    let mut ended = false;
    loop {
        let chunk = stream.next().await;
        let last = chunk.is_none();
        if let Some(chunk) = chunk {
            buf.extend_from_slice(&chunk.map_err(err)?);
        }
        if !header_done {
            if buf.len() < 19 {
                if last {
                    break;
                }
                continue;
            }
            let ext = u32::from_be_bytes([buf[15], buf[16], buf[17], buf[18]]) as usize;
            if buf.len() < 19 + ext {
                if last {
                    break;
                }
                continue;
            }
            let _ = buf.split_to(19 + ext);
            header_done = true;
        }
        if buf.len() < BLOCK && !last {
            continue;
        }
        // Cut the whole tuples off the front; the trailer ends the stream.
        let mut at = 0;
        loop {
            match tuple.read(&buf[at..]) {
                Ok(Some(len)) => at += len,
                Ok(None) => break,
                Err(_) => {
                    ended = true;
                    break;
                }
            }
        }
        let block: Bytes = buf.split_to(at).freeze();
        if !block.is_empty() {
            let (back, fed) = on_rayon(move || {
                let fed = feed(&mut sink, &block);
                (sink, fed)
            })
            .await;
            fed.map_err(|e| {
                PipelineError::Worker(format!("malformed COPY data from the target: {e}"))
            })?;
            sink = back;
        }
        if last || ended {
            break;
        }
    }
    Ok(sink)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_connectors::yugabyte::{PgType, TargetColumn};

    #[test]
    fn parts_cover_the_table_and_keep_the_filter() {
        let target = TargetTable {
            schema: "s".into(),
            name: "t".into(),
            columns: vec![TargetColumn {
                name: "a".into(),
                ty: PgType::scalar(23, "integer"),
                not_null: true,
                has_default: false,
            }],
            server_version: 150000,
        };
        let read = TargetRead::new(&target, &["a".into()], Some("(\"a\" > 1)".into()));
        let parts = read.statements(Some(10), 3);
        assert_eq!(
            parts,
            vec![
                "COPY (SELECT \"a\" FROM \"s\".\"t\" WHERE (\"a\" > 1) AND ctid < '(3,0)'::tid) TO STDOUT (FORMAT binary)",
                "COPY (SELECT \"a\" FROM \"s\".\"t\" WHERE (\"a\" > 1) AND ctid >= '(3,0)'::tid AND ctid < '(6,0)'::tid) TO STDOUT (FORMAT binary)",
                "COPY (SELECT \"a\" FROM \"s\".\"t\" WHERE (\"a\" > 1) AND ctid >= '(6,0)'::tid) TO STDOUT (FORMAT binary)",
            ]
        );
        assert_eq!(read.statements(None, 3).len(), 1);
    }
}
