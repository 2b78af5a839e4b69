//! `ferry.toml`: what to move, from where, to where. Every field is documented in `docs/config.md`.
//!
//! Order of precedence: the file, then `${VAR}` references in any string value, which are
//! replaced by the environment variable `VAR` (an unset variable is an error, never an empty
//! string; `$${` writes a literal `${`). Relative paths are relative to the config file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ferry_connectors::cassandra::{CassandraConfig, SplitCount};
use ferry_connectors::staging::StagingConfig;
use ferry_connectors::yugabyte::YugabyteConfig;
use serde::Deserialize;

use crate::error::{PipelineError, Result};
use crate::lease::WorkerIdentity;

/// A whole config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The Cassandra cluster to read from.
    pub source: CassandraConfig,
    /// The YugabyteDB (or PostgreSQL) database to write to.
    pub target: YugabyteConfig,
    /// How the run is executed.
    #[serde(default)]
    pub run: RunConfig,
    /// Where `ferry dump` writes Parquet and `ferry load` reads it, and the object store's
    /// credentials (docs/staging.md).
    #[serde(default)]
    pub staging: StagingConfig,
    /// The tables to move, in order. After [`Config::expand_keyspaces`], also every table the
    /// `[[keyspace]]` entries select.
    #[serde(rename = "table", default)]
    pub tables: Vec<TableConfig>,
    /// Whole keyspaces to move, with include/exclude patterns over their table names.
    #[serde(rename = "keyspace", default)]
    pub keyspaces: Vec<KeyspaceConfig>,
    /// Only these of the tables (`--tables`: source `keyspace.table`, target `schema.table`, or
    /// a bare table name), applied by [`Config::select_tables`] once keyspaces are expanded.
    #[serde(skip)]
    pub only_tables: Option<Vec<String>>,
    /// Settings of `ferry dry-run` (load rate for the ETA, probe, preview).
    #[serde(default)]
    pub dry_run: crate::dryrun::DryRunConfig,
    /// The directory of the config file; relative paths resolve against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The config file itself, for messages.
    #[serde(skip)]
    pub path: PathBuf,
}

/// Execution settings shared by every table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Target connections (M): how many work units are written at once. Default 4.
    #[serde(default = "default_connections")]
    pub connections: usize,
    /// Default number of splits (K) per table: token ranges, each one work unit. `"auto"` (the
    /// default) sizes them from Cassandra's size estimates, about one per 64 MiB, at least 16.
    #[serde(default)]
    pub splits: SplitCount,
    /// Attempts per work unit when it fails with a retriable error. Default 5.
    #[serde(default = "default_unit_attempts")]
    pub unit_attempts: u32,
    /// The run's name in the target's run state (schema `ferry_state`). Running the same config with
    /// the same id again resumes: committed units are skipped. Default `"default"`.
    #[serde(default = "default_run_id")]
    pub id: String,
    /// Start the run over (set by `ferry migrate --restart`): empty every target table and forget
    /// the run's progress before any table starts.
    #[serde(skip)]
    pub restart: bool,
    /// Seconds a worker's lease on a unit lasts; its process renews it every third of that. A
    /// unit whose worker died (or stalled longer) is taken over by another worker after it.
    /// Default 60.
    #[serde(default = "default_lease_s")]
    pub lease_s: u64,
    /// This process's worker identity and static shard (from `ferry migrate --worker-id`,
    /// `--workers`, `--worker-index`).
    #[serde(skip)]
    pub worker: WorkerIdentity,
    /// Stop a table once more rows than this have been rejected (by the encoder or the target).
    /// Units committed until then stay; fix the cause and run again to resume. Default: no limit.
    #[serde(default)]
    pub max_rejects: Option<u64>,
    /// How units are written: `"transactional"` (default; each unit one transaction with its
    /// checkpoint) or `"fast"` (YugabyteDB only: non-transactional upserts, idempotent by primary
    /// key; refused for tables with secondary indexes or foreign keys).
    #[serde(default)]
    pub mode: WriteMode,
    /// Whether `migrate` creates a missing target table from the Cassandra schema and the
    /// transform (the statement `ferry schema` prints) before planning it. Default false.
    #[serde(default)]
    pub create_tables: bool,
    /// Where rejected rows are written, as Parquet: `<reject_dir>/<run id>/<schema.table>/
    /// unit-<k>.parquet` (see docs/rejects.md). Relative to the config file. Default `rejects`.
    #[serde(default = "default_reject_dir")]
    pub reject_dir: PathBuf,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            connections: default_connections(),
            splits: SplitCount::Auto,
            unit_attempts: default_unit_attempts(),
            id: default_run_id(),
            restart: false,
            lease_s: default_lease_s(),
            worker: WorkerIdentity::default(),
            create_tables: false,
            mode: WriteMode::default(),
            max_rejects: None,
            reject_dir: default_reject_dir(),
        }
    }
}

fn default_reject_dir() -> PathBuf {
    PathBuf::from("rejects")
}

fn default_connections() -> usize {
    4
}

fn default_lease_s() -> u64 {
    60
}

fn default_unit_attempts() -> u32 {
    5
}

fn default_run_id() -> String {
    "default".to_string()
}

/// One table to move.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    /// The Cassandra table, `keyspace.table`.
    pub source: String,
    /// The target table, `table` or `schema.table`. Default: the source table's name, in the
    /// target's default schema.
    #[serde(default)]
    pub target: Option<String>,
    /// A SQL file with one `SELECT … FROM source …`. Default: `SELECT * FROM source`.
    #[serde(default)]
    pub transform: Option<PathBuf>,
    /// Splits for this table (`"auto"` or a count), overriding `run.splits`.
    #[serde(default)]
    pub splits: Option<SplitCount>,
    /// Columns whose write time to expose as `_writetime_<col>` (bigint, µs since the epoch);
    /// `["*"]` for every regular and static column that has one.
    #[serde(default)]
    pub writetime: Vec<String>,
    /// Columns whose TTL to expose as `_ttl_<col>` (int, seconds; NULL when none); `["*"]` for all.
    #[serde(default)]
    pub ttl: Vec<String>,
    /// Whether `migrate` creates this table when it is missing, overriding `run.create_tables`.
    #[serde(default)]
    pub create_tables: Option<bool>,
    /// How this table's units are written, overriding `run.mode`.
    #[serde(default)]
    pub mode: Option<WriteMode>,
    /// This table's reject limit, overriding `run.max_rejects`.
    #[serde(default)]
    pub max_rejects: Option<u64>,
    /// Where this table's rejected rows are written, overriding `run.reject_dir`.
    #[serde(default)]
    pub reject_dir: Option<PathBuf>,
}

/// Every table of a keyspace (or those its patterns select), each moved as a `[[table]]` with
/// the keyspace's settings. An explicit `[[table]]` for the same source wins.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyspaceConfig {
    /// The Cassandra keyspace.
    pub name: String,
    /// Table-name patterns to move (`*` any run of characters, `?` one character). Default: all.
    #[serde(default = "match_all")]
    pub include: Vec<String>,
    /// Table-name patterns to leave out, applied after `include`.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// The target schema of its tables (each keeps its name). Default: `target.schema`.
    #[serde(default)]
    pub target_schema: Option<String>,
    /// A directory of transform files: table `t` uses `<transforms>/t.sql` when it exists, and
    /// `SELECT * FROM source` otherwise.
    #[serde(default)]
    pub transforms: Option<PathBuf>,
    /// Splits of each of its tables, as in `[[table]]`.
    #[serde(default)]
    pub splits: Option<SplitCount>,
    /// `create_tables` of its tables, as in `[[table]]`.
    #[serde(default)]
    pub create_tables: Option<bool>,
    /// The write mode of its tables, as in `[[table]]`.
    #[serde(default)]
    pub mode: Option<WriteMode>,
    /// The reject limit of each of its tables, as in `[[table]]`.
    #[serde(default)]
    pub max_rejects: Option<u64>,
}

fn match_all() -> Vec<String> {
    vec!["*".to_string()]
}

impl KeyspaceConfig {
    /// Whether this entry selects table `name`.
    pub fn selects(&self, name: &str) -> bool {
        self.include.iter().any(|p| glob_match(p, name))
            && !self.exclude.iter().any(|p| glob_match(p, name))
    }

    /// The `[[table]]` entry of table `name` of this keyspace; `base_dir` resolves `transforms`.
    fn table(&self, name: &str, base_dir: &Path) -> TableConfig {
        let transform = self.transforms.as_ref().and_then(|dir| {
            let file = dir.join(format!("{name}.sql"));
            let resolved = if file.is_absolute() {
                file.clone()
            } else {
                base_dir.join(&file)
            };
            resolved.is_file().then_some(file)
        });
        TableConfig {
            source: format!("{}.{name}", self.name),
            target: self
                .target_schema
                .as_ref()
                .map(|schema| format!("{schema}.{name}")),
            transform,
            splits: self.splits,
            writetime: Vec::new(),
            ttl: Vec::new(),
            create_tables: self.create_tables,
            mode: self.mode,
            max_rejects: self.max_rejects,
            reject_dir: None,
        }
    }
}

/// Shell-style matching of a whole name: `*` matches any run of characters, `?` one.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Greedy matching that backtracks to the last `*` on a mismatch.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == '?' || c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// How work units are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteMode {
    /// `BEGIN; COPY; checkpoint; COMMIT` per unit: exactly once on any target.
    #[default]
    Transactional,
    /// YugabyteDB's `yb_disable_transactional_writes` + `yb_enable_upsert_mode`: rows are
    /// upserted without a distributed transaction, so a unit loaded again overwrites itself.
    Fast,
    /// As transactional, but each unit's rows are merged into the target by primary key
    /// (`INSERT … ON CONFLICT DO UPDATE` from a temporary table): rows already in the target are
    /// replaced. For catch-up runs and targets that already hold some of the rows.
    Upsert,
}

impl WriteMode {
    /// The mode's name in the config, reports and `explain`.
    pub fn name(self) -> &'static str {
        match self {
            WriteMode::Transactional => "transactional",
            WriteMode::Fast => "fast",
            WriteMode::Upsert => "upsert",
        }
    }
}

impl TableConfig {
    /// `(keyspace, table)` of the source.
    pub fn source_parts(&self) -> Option<(&str, &str)> {
        self.source
            .split_once('.')
            .filter(|(k, t)| !k.is_empty() && !t.is_empty() && !t.contains('.'))
    }

    /// How this table's units are written.
    pub fn mode(&self, run: &RunConfig) -> WriteMode {
        self.mode.unwrap_or(run.mode)
    }

    /// Whether `migrate` creates this table when it is missing.
    pub fn create_tables(&self, run: &RunConfig) -> bool {
        self.create_tables.unwrap_or(run.create_tables)
    }

    /// Where this table's rejected rows go (before resolving against the config file).
    pub fn reject_dir<'a>(&'a self, run: &'a RunConfig) -> &'a Path {
        self.reject_dir.as_deref().unwrap_or(&run.reject_dir)
    }

    /// `(schema, table)` of the target.
    pub fn target_parts<'a>(&'a self, default_schema: &'a str) -> (&'a str, &'a str) {
        let source_table = self.source_parts().map_or(self.source.as_str(), |(_, t)| t);
        match self.target.as_deref() {
            None => (default_schema, source_table),
            Some(t) => t.split_once('.').unwrap_or((default_schema, t)),
        }
    }
}

impl Config {
    /// Reads, interpolates and validates a config file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| PipelineError::ConfigRead {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Self::parse(&text, path, &|name| std::env::var(name).ok())?;
        config.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        config.source.resolve_paths(&config.base_dir);
        config.target.resolve_paths(&config.base_dir);
        Ok(config)
    }

    /// Parses config text; `env` looks up `${VAR}` references.
    pub fn parse(text: &str, path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        let invalid = |message: String| PipelineError::Config {
            path: path.to_path_buf(),
            message,
        };
        let mut value: toml::Value = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        interpolate(&mut value, env).map_err(invalid)?;
        let mut config: Config = value
            .try_into()
            .map_err(|e: toml::de::Error| invalid(e.to_string()))?;
        config.path = path.to_path_buf();
        config.validate().map_err(invalid)?;
        Ok(config)
    }

    /// Adds a `[[table]]` for every table the `[[keyspace]]` entries select, given the tables
    /// of each of their keyspaces (`listing`, from Cassandra's schema). Tables named by an
    /// explicit `[[table]]` keep that entry. A keyspace missing from `listing`, or whose patterns
    /// select nothing, is an error: a typo never turns into a run that moves nothing.
    pub fn expand_keyspaces(
        &mut self,
        listing: &BTreeMap<String, Vec<String>>,
    ) -> std::result::Result<(), String> {
        let keyspaces = std::mem::take(&mut self.keyspaces);
        for keyspace in &keyspaces {
            let Some(names) = listing.get(&keyspace.name) else {
                return Err(format!(
                    "keyspace `{}` ([[keyspace]] name) does not exist in Cassandra",
                    keyspace.name
                ));
            };
            let mut names: Vec<&String> = names.iter().filter(|n| keyspace.selects(n)).collect();
            names.sort();
            if names.is_empty() {
                return Err(format!(
                    "[[keyspace]] `{}`: include {:?} and exclude {:?} select none of its tables ({})",
                    keyspace.name,
                    keyspace.include,
                    keyspace.exclude,
                    listing[&keyspace.name].join(", ")
                ));
            }
            for name in names {
                let source = format!("{}.{name}", keyspace.name);
                if !self.tables.iter().any(|t| t.source == source) {
                    self.tables.push(keyspace.table(name, &self.base_dir));
                }
            }
        }
        Ok(())
    }

    /// Keeps only the tables `only_tables` names, in config order; a name that matches none is
    /// an error naming the tables there are.
    pub fn select_tables(&mut self) -> std::result::Result<(), String> {
        let Some(names) = self.only_tables.take() else {
            return Ok(());
        };
        let default_schema = self.target.schema.clone();
        let matches = |t: &TableConfig, name: &str| {
            let (schema, target) = t.target_parts(&default_schema);
            t.source == name
                || t.source_parts().is_some_and(|(_, n)| n == name)
                || format!("{schema}.{target}") == name
                || target == name
        };
        if let Some(name) = names
            .iter()
            .find(|n| !self.tables.iter().any(|t| matches(t, n)))
        {
            let known: Vec<&str> = self.tables.iter().map(|t| t.source.as_str()).collect();
            return Err(format!(
                "--tables: no table {name:?} in the config (tables: {})",
                known.join(", ")
            ));
        }
        self.tables.retain(|t| names.iter().any(|n| matches(t, n)));
        Ok(())
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.tables.is_empty() && self.keyspaces.is_empty() {
            return Err("no [[table]] or [[keyspace]] entries: nothing to move".into());
        }
        for k in &self.keyspaces {
            if k.name.is_empty() || k.name.contains('.') {
                return Err(format!(
                    "[[keyspace]] name {:?} must be a keyspace name",
                    k.name
                ));
            }
            if k.include.is_empty() {
                return Err(format!(
                    "[[keyspace]] `{}`: include is empty, so it selects no table",
                    k.name
                ));
            }
        }
        self.source.validate().map_err(|e| e.to_string())?;
        self.target.validate().map_err(|e| e.to_string())?;
        self.staging.validate().map_err(|e| e.to_string())?;
        if self.run.connections == 0 {
            return Err("run.connections must be at least 1".into());
        }
        if self.run.lease_s < 3 {
            return Err("run.lease_s must be at least 3 (seconds)".into());
        }
        if self.run.reject_dir.as_os_str().is_empty() {
            return Err("run.reject_dir must not be empty (rejected rows are always kept)".into());
        }
        for t in &self.tables {
            if t.source_parts().is_none() {
                return Err(format!(
                    "table source {:?} must be `keyspace.table`",
                    t.source
                ));
            }
            if t.reject_dir
                .as_ref()
                .is_some_and(|d| d.as_os_str().is_empty())
            {
                return Err(format!(
                    "table {}: reject_dir must not be empty (rejected rows are always kept)",
                    t.source
                ));
            }
        }
        Ok(())
    }

    /// A path from the config, resolved against the config file's directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }
}

/// Replaces `${VAR}` in every string of `value`.
fn interpolate(
    value: &mut toml::Value,
    env: &dyn Fn(&str) -> Option<String>,
) -> std::result::Result<(), String> {
    match value {
        toml::Value::String(s) => *s = interpolate_str(s, env)?,
        toml::Value::Array(items) => {
            for item in items {
                interpolate(item, env)?;
            }
        }
        toml::Value::Table(table) => {
            for (_, item) in table.iter_mut() {
                interpolate(item, env)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn interpolate_str(
    s: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail
                .find('}')
                .ok_or_else(|| format!("unterminated ${{ in {s:?}"))?;
            let name = &tail[..end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("invalid environment variable name {name:?}"));
            }
            let value =
                env(name).ok_or_else(|| format!("environment variable {name} is not set"))?;
            out.push_str(&value);
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        [source]
        contact_points = ["127.0.0.1:9042"]
        [target]
        url = "postgresql://ferry@127.0.0.1:54320/ferry"
        password = "${PW}"
        [[table]]
        source = "ks.users"
    "#;

    fn env(name: &str) -> Option<String> {
        (name == "PW").then(|| "s3cret".to_string())
    }

    #[test]
    fn parses_with_defaults_and_interpolation() {
        let c = Config::parse(MINIMAL, Path::new("f.toml"), &env).expect("valid");
        assert_eq!(c.run.connections, 4);
        assert_eq!(c.run.splits, SplitCount::Auto);
        assert_eq!(
            c.target.password.as_ref().map(|p| p.expose()),
            Some("s3cret")
        );
        assert_eq!(c.tables[0].target_parts("public"), ("public", "users"));
        // The secret never shows up in Debug output.
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn unknown_fields_are_errors_that_name_the_field() {
        let text = MINIMAL.replace("[[table]]", "[run]\nconections = 3\n[[table]]");
        let err = Config::parse(&text, Path::new("f.toml"), &env).expect_err("typo");
        assert!(err.to_string().contains("conections"), "{err}");
    }

    #[test]
    fn create_tables_defaults_off_and_a_table_overrides_run() {
        let c = Config::parse(MINIMAL, Path::new("f.toml"), &env).expect("valid");
        assert!(!c.tables[0].create_tables(&c.run));
        let text = MINIMAL.replace(
            "[[table]]",
            "[run]\ncreate_tables = true\n[[table]]\ncreate_tables = false\nsource = \"ks.a\"\n[[table]]",
        );
        let c = Config::parse(&text, Path::new("f.toml"), &env).expect("valid");
        assert!(!c.tables[0].create_tables(&c.run));
        assert!(c.tables[1].create_tables(&c.run));
    }

    #[test]
    fn reject_dir_defaults_next_to_the_config_and_a_table_overrides_it() {
        let c = Config::parse(MINIMAL, Path::new("f.toml"), &env).expect("valid");
        assert_eq!(c.tables[0].reject_dir(&c.run), Path::new("rejects"));
        let text = MINIMAL.replace(
            "[[table]]",
            "[run]\nreject_dir = \"/var/ferry/bad\"\n[[table]]\nreject_dir = \"mine\"\n\
             source = \"ks.a\"\n[[table]]",
        );
        let c = Config::parse(&text, Path::new("f.toml"), &env).expect("valid");
        assert_eq!(c.tables[0].reject_dir(&c.run), Path::new("mine"));
        assert_eq!(c.tables[1].reject_dir(&c.run), Path::new("/var/ferry/bad"));
        let text = MINIMAL.replace("[[table]]", "[run]\nreject_dir = \"\"\n[[table]]");
        let err = Config::parse(&text, Path::new("f.toml"), &env).expect_err("empty");
        assert!(
            err.to_string().contains("reject_dir must not be empty"),
            "{err}"
        );
        let text = MINIMAL.replace("ks.users\"", "ks.users\"\nreject_dir = \"\"");
        let err = Config::parse(&text, Path::new("f.toml"), &env).expect_err("empty");
        assert!(
            err.to_string().contains("table ks.users: reject_dir"),
            "{err}"
        );
    }

    #[test]
    fn unset_variables_are_errors() {
        let err = Config::parse(MINIMAL, Path::new("f.toml"), &|_| None).expect_err("unset");
        assert!(err.to_string().contains("PW is not set"), "{err}");
    }

    #[test]
    fn interpolation_escapes_and_passes_plain_dollars() {
        let out = interpolate_str("a$b$${x}${PW}", &env).expect("valid");
        assert_eq!(out, "a$b${x}s3cret");
    }

    #[test]
    fn globs_match_whole_names() {
        for (p, n, want) in [
            ("*", "users", true),
            ("user*", "users", true),
            ("*s", "users", true),
            ("u?ers", "users", true),
            ("*_archive", "orders_archive", true),
            ("*_archive", "orders", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("", "", true),
            ("users", "users2", false),
            ("**", "", true),
        ] {
            assert_eq!(glob_match(p, n), want, "{p} vs {n}");
        }
    }

    #[test]
    fn a_row_rate_cap_is_a_positive_integer() {
        let with = |value: &str| {
            MINIMAL.replace(
                "[target]",
                &format!("max_rows_per_s = {value}\n        [target]"),
            )
        };
        let c = Config::parse(&with("50000"), Path::new("f.toml"), &env).expect("valid");
        assert_eq!(c.source.max_rows_per_s.map(u64::from), Some(50_000));
        let c = Config::parse(MINIMAL, Path::new("f.toml"), &env).expect("valid");
        assert_eq!(c.source.max_rows_per_s, None);
        let err = Config::parse(&with("0"), Path::new("f.toml"), &env).expect_err("zero");
        let err = err.to_string();
        assert!(
            err.contains("max_rows_per_s") && err.contains("nonzero"),
            "{err}"
        );
    }

    #[test]
    fn the_write_mode_comes_from_the_run_unless_the_table_says() {
        let text = MINIMAL.replace(
            "[[table]]\n        source = \"ks.users\"",
            "[run]\nmode = \"upsert\"\n[[table]]\nsource = \"ks.a\"\n\
             [[table]]\nsource = \"ks.b\"\nmode = \"transactional\"",
        );
        let c = Config::parse(&text, Path::new("f.toml"), &env).expect("valid");
        let modes: Vec<_> = c.tables.iter().map(|t| t.mode(&c.run).name()).collect();
        assert_eq!(modes, ["upsert", "transactional"]);

        let text = MINIMAL.replace("[[table]]", "[run]\nmode = \"merge\"\n[[table]]");
        let err = Config::parse(&text, Path::new("f.toml"), &env).expect_err("no such mode");
        let err = err.to_string();
        assert!(
            err.contains("merge") && err.contains("upsert") && err.contains("transactional"),
            "{err}"
        );
    }

    #[test]
    fn keyspaces_expand_to_tables_explicit_entries_win() {
        let text = MINIMAL.replace(
            "[[table]]",
            "[[keyspace]]\nname = \"ks\"\nexclude = [\"tmp_*\"]\ntarget_schema = \"app\"\nmode = \"fast\"\n[[table]]",
        );
        let mut c = Config::parse(&text, Path::new("f.toml"), &env).expect("valid");
        let listing = BTreeMap::from([(
            "ks".to_string(),
            vec!["users".into(), "orders".into(), "tmp_x".into()],
        )]);
        c.expand_keyspaces(&listing).expect("expands");
        let sources: Vec<_> = c.tables.iter().map(|t| t.source.as_str()).collect();
        assert_eq!(sources, ["ks.users", "ks.orders"]);
        // The explicit [[table]] keeps its own settings; the expanded one has the keyspace's.
        assert_eq!(c.tables[0].target_parts("public"), ("public", "users"));
        assert_eq!(c.tables[1].target_parts("public"), ("app", "orders"));
        assert_eq!(c.tables[1].mode(&c.run), WriteMode::Fast);

        let mut missing = Config::parse(&text, Path::new("f.toml"), &env).expect("valid");
        let err = missing
            .expand_keyspaces(&BTreeMap::new())
            .expect_err("no such keyspace");
        assert!(
            err.contains("`ks`") && err.contains("does not exist"),
            "{err}"
        );

        let mut none = Config::parse(&text, Path::new("f.toml"), &env).expect("valid");
        let only_tmp = BTreeMap::from([("ks".to_string(), vec!["tmp_a".to_string()])]);
        let err = none
            .expand_keyspaces(&only_tmp)
            .expect_err("nothing selected");
        assert!(
            err.contains("select none") && err.contains("tmp_a"),
            "{err}"
        );
    }

    /// The complete example of docs/config.md and the shipped examples parse.
    #[test]
    fn the_documented_and_shipped_examples_parse() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let doc = std::fs::read_to_string(root.join("docs/config.md")).expect("docs/config.md");
        let example = doc
            .split("## A complete example")
            .nth(1)
            .and_then(|rest| rest.split("```toml\n").nth(1))
            .and_then(|block| block.split("```").next())
            .expect("docs/config.md has a complete example");
        let any_env = |_: &str| Some("value".to_string());
        let c = Config::parse(example, Path::new("docs/config.md"), &any_env)
            .unwrap_or_else(|e| panic!("the complete example in docs/config.md: {e}"));
        assert_eq!(c.run.id, "shop-2026-11");
        assert_eq!(c.tables.len(), 1);
        assert_eq!(c.keyspaces[0].exclude, ["*_archive"]);
        assert_eq!(c.dry_run.preview_rows, 5);
        assert_eq!(c.staging.url.as_deref(), Some("s3://shop-cutover/2026-11"));
        for entry in std::fs::read_dir(root.join("examples")).expect("examples/") {
            let path = entry.expect("entry").path().join("ferry.toml");
            if path.exists() {
                let text = std::fs::read_to_string(&path).expect("read example");
                Config::parse(&text, &path, &any_env)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            }
        }
    }

    #[test]
    fn bad_table_names_are_errors() {
        let text = MINIMAL.replace("ks.users", "users");
        let err = Config::parse(&text, Path::new("f.toml"), &env).expect_err("no keyspace");
        assert!(err.to_string().contains("keyspace.table"), "{err}");
    }
}
