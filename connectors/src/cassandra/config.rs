//! Cassandra connection and read options (the `[source]` section of `ferry.toml`).

use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{ConnectorError, Result};
use crate::secret::Secret;

/// How Ferry connects to Cassandra and reads from it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CassandraConfig {
    /// Contact points, `host:port`. One reachable node is enough; the driver discovers the rest.
    pub contact_points: Vec<String>,
    /// Datacenter to read from; reads are routed to replicas in it. Default: any.
    #[serde(default)]
    pub local_dc: Option<String>,
    /// Username for password authentication (Cassandra's `PasswordAuthenticator`). Needs
    /// `password` or `password_file`.
    #[serde(default)]
    pub username: Option<String>,
    /// Password for password authentication; use `${ENV_VAR}` rather than a literal.
    #[serde(default)]
    pub password: Option<Secret>,
    /// A file holding the password (its first line; a trailing newline is ignored), instead
    /// of `password`. Relative to the config file.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// TLS toward Cassandra (`[source.tls]`). Default: plaintext.
    #[serde(default)]
    pub tls: CassandraTlsConfig,
    /// Consistency level of every read. Default `LOCAL_ONE`.
    #[serde(default)]
    pub consistency: ConsistencyLevel,
    /// Rows per page. Each page becomes one Arrow record batch. Default 5000.
    #[serde(default = "default_page_size")]
    pub page_size: i32,
    /// Per-request timeout in milliseconds. Default 30000.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Connection timeout in milliseconds. Default 5000.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Most page requests in flight at once per table, across all its splits. Each split being
    /// read keeps at most two (the page being decoded and the next). Default 64.
    #[serde(default = "default_max_concurrent_requests")]
    pub max_concurrent_requests: usize,
    /// Most rows per second each table's scan reads, over all its splits (none: no cap), to
    /// leave room for a production cluster's own traffic. Per process: W workers read W times
    /// this.
    #[serde(default)]
    pub max_rows_per_s: Option<NonZeroU64>,
    /// Send simple filters of a transform or query (`column op literal` on clustering and
    /// regular columns) to Cassandra with `ALLOW FILTERING`, so fewer rows cross the wire.
    /// DataFusion applies them again either way. Default true.
    #[serde(default = "default_true")]
    pub filter_pushdown: bool,
}

impl CassandraConfig {
    /// A configuration with defaults, for the given contact points.
    pub fn new(contact_points: Vec<String>) -> Self {
        Self {
            contact_points,
            local_dc: None,
            username: None,
            password: None,
            password_file: None,
            tls: CassandraTlsConfig::default(),
            consistency: ConsistencyLevel::default(),
            page_size: default_page_size(),
            request_timeout_ms: default_request_timeout_ms(),
            connect_timeout_ms: default_connect_timeout_ms(),
            max_concurrent_requests: default_max_concurrent_requests(),
            max_rows_per_s: None,
            filter_pushdown: true,
        }
    }

    /// The per-request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// Checks the combinations serde cannot: credentials come in pairs, TLS files match the mode.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| ConnectorError::Config {
            section: "source",
            message,
        };
        if self.password.is_some() && self.password_file.is_some() {
            return Err(invalid(
                "set either password or password_file, not both".into(),
            ));
        }
        let has_password = self.password.is_some() || self.password_file.is_some();
        match (&self.username, has_password) {
            (Some(_), false) => {
                return Err(invalid(
                    "username is set but neither password nor password_file".into(),
                ));
            }
            (None, true) => {
                return Err(invalid(
                    "password/password_file is set but username is not".into(),
                ));
            }
            _ => {}
        }
        self.tls.validate("source.tls", "the Cassandra nodes")
    }

    /// Makes relative file paths (`password_file`, `tls.*_file`) relative to `base_dir`, the
    /// directory of the config file.
    pub fn resolve_paths(&mut self, base_dir: &Path) {
        let resolve = |p: &mut Option<PathBuf>| {
            if let Some(path) = p.as_mut().filter(|p| p.is_relative()) {
                *path = base_dir.join(&*path);
            }
        };
        resolve(&mut self.password_file);
        self.tls.resolve_paths(base_dir);
    }

    /// The password, from `password` or read from `password_file`.
    pub fn password(&self) -> Result<Option<Secret>> {
        if let Some(p) = &self.password {
            return Ok(Some(p.clone()));
        }
        let Some(path) = &self.password_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|e| ConnectorError::Config {
            section: "source",
            message: format!("cannot read password_file {}: {e}", path.display()),
        })?;
        let line = text.lines().next().unwrap_or_default();
        Ok(Some(Secret::new(line)))
    }
}

/// `[source.tls]`: whether and how the connection to Cassandra is encrypted and verified; see
/// [`crate::tls::TlsConfig`].
pub type CassandraTlsConfig = crate::tls::TlsConfig;

pub use crate::tls::TlsMode;

fn default_page_size() -> i32 {
    5000
}

fn default_request_timeout_ms() -> u64 {
    30_000
}

fn default_connect_timeout_ms() -> u64 {
    5_000
}

fn default_max_concurrent_requests() -> usize {
    super::scan::DEFAULT_MAX_REQUESTS
}

fn default_true() -> bool {
    true
}

/// Read consistency levels that make sense for a bulk read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConsistencyLevel {
    One,
    Two,
    Three,
    Quorum,
    All,
    #[default]
    LocalOne,
    LocalQuorum,
    EachQuorum,
}

impl From<ConsistencyLevel> for scylla::statement::Consistency {
    fn from(c: ConsistencyLevel) -> Self {
        use scylla::statement::Consistency as C;
        match c {
            ConsistencyLevel::One => C::One,
            ConsistencyLevel::Two => C::Two,
            ConsistencyLevel::Three => C::Three,
            ConsistencyLevel::Quorum => C::Quorum,
            ConsistencyLevel::All => C::All,
            ConsistencyLevel::LocalOne => C::LocalOne,
            ConsistencyLevel::LocalQuorum => C::LocalQuorum,
            ConsistencyLevel::EachQuorum => C::EachQuorum,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> std::result::Result<CassandraConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    fn invalid(config: &CassandraConfig) -> String {
        match config.validate() {
            Err(e) => e.to_string(),
            Ok(()) => panic!("expected a validation error for {config:?}"),
        }
    }

    #[test]
    fn tls_defaults_to_disabled() {
        let c = parse(r#"contact_points = ["127.0.0.1:9042"]"#).expect("valid");
        assert_eq!(c.tls, CassandraTlsConfig::default());
        assert_eq!(c.tls.mode, TlsMode::Disable);
        c.validate().expect("valid");
    }

    #[test]
    fn parses_every_tls_field_and_mode() {
        for (text, mode) in [
            ("disable", TlsMode::Disable),
            ("require", TlsMode::Require),
            ("verify-ca", TlsMode::VerifyCa),
            ("verify-full", TlsMode::VerifyFull),
        ] {
            let c = parse(&format!(
                "contact_points = [\"h:9042\"]\n[tls]\nmode = \"{text}\"\n"
            ))
            .expect("valid");
            assert_eq!(c.tls.mode, mode);
            assert_eq!(c.tls.mode.to_string(), text);
        }
        let c = parse(
            r#"
            contact_points = ["h:9042"]
            [tls]
            mode = "verify-full"
            ca_file = "ca.pem"
            cert_file = "/etc/ferry/client.pem"
            key_file = "client.key"
            "#,
        )
        .expect("valid");
        assert_eq!(c.tls.ca_file, Some(PathBuf::from("ca.pem")));
        assert_eq!(
            c.tls.cert_file,
            Some(PathBuf::from("/etc/ferry/client.pem"))
        );
        assert_eq!(c.tls.key_file, Some(PathBuf::from("client.key")));
        c.validate().expect("valid");
    }

    #[test]
    fn unknown_tls_fields_and_modes_are_refused() {
        let e = parse("contact_points = [\"h\"]\n[tls]\nmode = \"require\"\nca_path = \"x\"\n")
            .expect_err("unknown field");
        assert!(e.contains("unknown field `ca_path`"), "{e}");
        let e = parse("contact_points = [\"h\"]\n[tls]\nmode = \"verify_full\"\n")
            .expect_err("unknown mode");
        assert!(e.contains("verify-full"), "{e}");
    }

    #[test]
    fn tls_files_must_fit_the_mode() {
        let mut c = CassandraConfig::new(vec!["h:9042".into()]);
        c.tls.mode = TlsMode::VerifyCa;
        assert!(invalid(&c).contains("mode = \"verify-ca\" needs ca_file"));
        c.tls.mode = TlsMode::VerifyFull;
        assert!(invalid(&c).contains("mode = \"verify-full\" needs ca_file"));
        c.tls.ca_file = Some("ca.pem".into());
        c.validate().expect("valid");
        c.tls.cert_file = Some("client.pem".into());
        assert!(invalid(&c).contains("cert_file and key_file go together"));
        c.tls.key_file = Some("client.key".into());
        c.validate().expect("valid");
        c.tls.mode = TlsMode::Disable;
        assert!(invalid(&c).contains("mode is \"disable\""));
        c.tls.mode = TlsMode::Require;
        assert!(invalid(&c).contains("ca_file is set but mode = \"require\""));
        c.tls.ca_file = None;
        c.validate()
            .expect("require with a client certificate is valid");
    }

    #[test]
    fn credentials_come_in_pairs() {
        let mut c = CassandraConfig::new(vec!["h:9042".into()]);
        c.username = Some("ferry".into());
        assert!(invalid(&c).contains("username is set but neither password nor password_file"));
        c.password = Some(Secret::new("pw"));
        c.validate().expect("valid");
        c.password_file = Some("pw.txt".into());
        assert!(invalid(&c).contains("either password or password_file"));
        c.password = None;
        c.validate().expect("valid");
        c.username = None;
        assert!(invalid(&c).contains("username is not"));
    }

    #[test]
    fn the_password_never_shows_in_debug() {
        let c = parse(
            r#"
            contact_points = ["h:9042"]
            username = "ferry"
            password = "hunter2-cassandra"
            "#,
        )
        .expect("valid");
        let debug = format!("{c:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("***"), "{debug}");
        assert_eq!(
            c.password()
                .expect("inline")
                .map(|p| p.expose().to_string()),
            Some("hunter2-cassandra".to_string())
        );
    }

    #[test]
    fn password_file_is_read_to_its_first_line() {
        let dir = std::env::temp_dir().join(format!("ferry-pwfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("pw.txt"), "s3cret pass\r\nignored\n").expect("write");
        let mut c = parse(
            r#"
            contact_points = ["h:9042"]
            username = "ferry"
            password_file = "pw.txt"
            [tls]
            mode = "verify-ca"
            ca_file = "certs/ca.pem"
            "#,
        )
        .expect("valid");
        c.resolve_paths(&dir);
        assert_eq!(c.password_file, Some(dir.join("pw.txt")));
        assert_eq!(c.tls.ca_file, Some(dir.join("certs/ca.pem")));
        let pw = c.password().expect("readable").expect("set");
        assert_eq!(pw.expose(), "s3cret pass");
        assert!(!format!("{c:?}").contains("s3cret"));

        c.password_file = Some(dir.join("missing.txt"));
        let e = c.password().expect_err("missing").to_string();
        assert!(
            e.contains("cannot read password_file") && e.contains("missing.txt"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
