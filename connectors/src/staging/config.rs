//! `[staging]`: where `ferry dump` writes Parquet and `ferry load` reads it, the object store
//! credentials, and how the files are written. Every field is documented in docs/config.md.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::{ConnectorError, Result};
use crate::secret::Secret;

/// Staging settings. Credentials left out here come from the object store's usual environment
/// variables (`AWS_*`, `GOOGLE_*`, `AZURE_*`); a value set here wins over the environment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StagingConfig {
    /// Where staged tables live when the command line gives no `--to`/`--from`: a path or
    /// `file://`, `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix` (or
    /// `abfs[s]://container@account.dfs.core.windows.net/prefix`). A relative path is relative to
    /// the config file.
    #[serde(default)]
    pub url: Option<String>,
    /// Dump the source columns as Cassandra returns them, without the table's transform (which
    /// `ferry load` then applies). `ferry dump --raw` sets it too. Default false: the dump applies
    /// the transform, and the load applies none.
    #[serde(default)]
    pub raw: bool,
    /// S3 region. Default: `AWS_REGION` or `AWS_DEFAULT_REGION`, else `us-east-1`.
    #[serde(default)]
    pub region: Option<String>,
    /// An S3-compatible endpoint (MinIO, Ceph, moto, …), e.g. `http://127.0.0.1:9000`. Default:
    /// `AWS_ENDPOINT_URL` or `AWS_ENDPOINT`, else AWS itself.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Allow `http://` endpoints (S3-compatible stores on a private network). Default false.
    #[serde(default)]
    pub allow_http: Option<bool>,
    /// S3 access key id. Default: `AWS_ACCESS_KEY_ID`, else the instance's or web identity's
    /// credentials.
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// S3 secret access key; use `${ENV_VAR}` rather than a literal. Default:
    /// `AWS_SECRET_ACCESS_KEY`.
    #[serde(default)]
    pub secret_access_key: Option<Secret>,
    /// S3 session token of temporary credentials. Default: `AWS_SESSION_TOKEN`.
    #[serde(default)]
    pub session_token: Option<Secret>,
    /// Any other object store option by its object_store key, e.g.
    /// `google_service_account = "/etc/gcs.json"`, `azure_storage_account_name = "acct"`,
    /// `azure_storage_account_key = "${AZURE_KEY}"`, `aws_virtual_hosted_style_request = "true"`.
    /// Values are treated as secrets: they are never logged.
    #[serde(default)]
    pub options: BTreeMap<String, Secret>,
    /// zstd compression level of the Parquet files, 1 (fastest) to 22. Default 1.
    #[serde(default = "default_zstd_level")]
    pub zstd_level: i32,
    /// Rows per Parquet row group. Default 131072.
    #[serde(default = "default_row_group_rows")]
    pub row_group_rows: usize,
    /// A split's rows go to a new file once its current file reaches about this many MiB.
    /// Default 512.
    #[serde(default = "default_file_mb")]
    pub file_mb: u64,
}

impl Default for StagingConfig {
    fn default() -> Self {
        Self {
            url: None,
            raw: false,
            region: None,
            endpoint: None,
            allow_http: None,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            options: BTreeMap::new(),
            zstd_level: default_zstd_level(),
            row_group_rows: default_row_group_rows(),
            file_mb: default_file_mb(),
        }
    }
}

fn default_zstd_level() -> i32 {
    1
}

fn default_row_group_rows() -> usize {
    128 * 1024
}

fn default_file_mb() -> u64 {
    512
}

impl StagingConfig {
    /// Checks the values that need no object store to check.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| ConnectorError::Config {
            section: "staging",
            message,
        };
        if !(1..=22).contains(&self.zstd_level) {
            return Err(invalid(format!(
                "zstd_level = {} is outside 1..=22",
                self.zstd_level
            )));
        }
        if self.row_group_rows == 0 {
            return Err(invalid("row_group_rows must be at least 1".into()));
        }
        if self.file_mb == 0 {
            return Err(invalid("file_mb must be at least 1".into()));
        }
        if self.url.as_deref().is_some_and(|u| u.trim().is_empty()) {
            return Err(invalid("url must not be empty".into()));
        }
        Ok(())
    }

    /// The S3-only settings given, by name, for the message when the URL is not `s3://`.
    pub(crate) fn s3_settings(&self) -> Vec<&'static str> {
        let mut set = Vec::new();
        if self.region.is_some() {
            set.push("region");
        }
        if self.endpoint.is_some() {
            set.push("endpoint");
        }
        if self.allow_http.is_some() {
            set.push("allow_http");
        }
        if self.access_key_id.is_some() {
            set.push("access_key_id");
        }
        if self.secret_access_key.is_some() {
            set.push("secret_access_key");
        }
        if self.session_token.is_some() {
            set.push("session_token");
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let c: StagingConfig = toml::from_str("").expect("empty is valid");
        assert_eq!(c.zstd_level, 1);
        assert_eq!(c.row_group_rows, 131_072);
        assert_eq!(c.file_mb, 512);
        c.validate().expect("defaults are valid");
        let c: StagingConfig = toml::from_str("zstd_level = 30").expect("parses");
        let err = c.validate().expect_err("level out of range");
        assert!(err.to_string().contains("zstd_level = 30"), "{err}");
        let err = toml::from_str::<StagingConfig>("regoin = \"x\"").expect_err("typo");
        assert!(err.to_string().contains("regoin"), "{err}");
    }

    #[test]
    fn secrets_stay_hidden() {
        let c: StagingConfig = toml::from_str(
            "secret_access_key = \"s3cret\"\n[options]\nazure_storage_account_key = \"k3y\"",
        )
        .expect("parses");
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("k3y"),
            "{shown}"
        );
    }
}
