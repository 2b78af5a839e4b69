//! Where staged tables live: a URL turned into an object store and a prefix.
//!
//! ```text
//! <url>/<keyspace>.<table>/_manifest.json
//! <url>/<keyspace>.<table>/split-<k>-<n>.parquet     split k, file n (five and three digits)
//! ```
//!
//! Every store publishes an object whole or not at all: S3 and GCS complete a multipart upload in
//! one request, Azure commits a block list, and object_store's local file system writes to a
//! `<name>#<n>` file that it renames into place. So a crashed write never leaves a half file
//! under the final name; what a crashed dump may leave is complete files the manifest does not
//! list (and, on local disk, `#` files), which a resumed dump deletes.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, ObjectStoreScheme, PutPayload};

use super::config::StagingConfig;
use super::manifest::{MANIFEST_FILE, Manifest};
use crate::error::{ConnectorError, Result};

/// The root that staged tables live under.
#[derive(Clone)]
pub struct StagingLocation {
    /// The URL as the user gave it (a local path made absolute), for messages.
    url: String,
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    /// The directory, for a local file system.
    local: Option<PathBuf>,
}

impl fmt::Debug for StagingLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StagingLocation")
            .field("url", &self.url)
            .finish()
    }
}

impl fmt::Display for StagingLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

fn config_err(message: String) -> ConnectorError {
    ConnectorError::Config {
        section: "staging",
        message,
    }
}

impl StagingLocation {
    /// Opens `url` with `config`'s credentials. A path without a scheme (or `file://`) is a local
    /// directory; a relative one is relative to `base_dir`.
    pub fn open(url: &str, config: &StagingConfig, base_dir: &FsPath) -> Result<Self> {
        let url = url.trim();
        if url.is_empty() {
            return Err(config_err("the staging URL is empty".into()));
        }
        let has_scheme = url
            .split_once("://")
            .is_some_and(|(scheme, _)| !scheme.is_empty() && !scheme.contains('/'));
        if !has_scheme || url.starts_with("file://") {
            let path = match url.strip_prefix("file://") {
                Some(rest) => PathBuf::from(rest),
                None => PathBuf::from(url),
            };
            return Self::local(&path, config, base_dir);
        }
        let parsed = url::Url::parse(url)
            .map_err(|e| config_err(format!("staging URL {url:?} is not a valid URL: {e}")))?;
        let (scheme, prefix) = ObjectStoreScheme::parse(&parsed).map_err(|_| {
            config_err(format!(
                "staging URL {url}: unsupported scheme `{}`; use a path, file://, s3://, gs://, \
                 az:// or abfs[s]://",
                parsed.scheme()
            ))
        })?;
        let store: Arc<dyn ObjectStore> = match scheme {
            ObjectStoreScheme::AmazonS3 => Arc::new(s3(url, config)?),
            ObjectStoreScheme::GoogleCloudStorage => {
                ignore_s3_settings(url, config);
                let mut builder = GoogleCloudStorageBuilder::from_env().with_url(url);
                for (key, value) in &config.options {
                    let key: GoogleConfigKey =
                        key.parse().map_err(|_| unknown_option(key, "gs://"))?;
                    builder = builder.with_config(key, value.expose());
                }
                Arc::new(builder.build().map_err(|e| store_config_err(url, e))?)
            }
            ObjectStoreScheme::MicrosoftAzure => {
                ignore_s3_settings(url, config);
                let mut builder = MicrosoftAzureBuilder::from_env().with_url(url);
                for (key, value) in &config.options {
                    let key: AzureConfigKey =
                        key.parse().map_err(|_| unknown_option(key, "az://"))?;
                    builder = builder.with_config(key, value.expose());
                }
                Arc::new(builder.build().map_err(|e| store_config_err(url, e))?)
            }
            _ => {
                return Err(config_err(format!(
                    "staging URL {url}: unsupported scheme `{}`; use a path, file://, s3://, \
                     gs://, az:// or abfs[s]://",
                    parsed.scheme()
                )));
            }
        };
        Ok(Self {
            url: url.trim_end_matches('/').to_string(),
            store,
            prefix,
            local: None,
        })
    }

    fn local(path: &FsPath, config: &StagingConfig, base_dir: &FsPath) -> Result<Self> {
        ignore_s3_settings(&path.display().to_string(), config);
        if !config.options.is_empty() {
            tracing::warn!(url = %path.display(), "staging.options apply to object stores; ignored for a local directory");
        }
        let absolute = if path.is_absolute() {
            path.to_path_buf()
        } else {
            std::env::current_dir()
                .map(|cwd| cwd.join(base_dir).join(path))
                .map_err(|e| config_err(format!("cannot resolve {}: {e}", path.display())))?
        };
        let absolute = normalize(&absolute);
        let prefix = Path::from_absolute_path(&absolute).map_err(|e| {
            config_err(format!(
                "staging directory {} cannot be used: {e}",
                absolute.display()
            ))
        })?;
        Ok(Self {
            url: absolute.display().to_string(),
            store: Arc::new(LocalFileSystem::new()),
            prefix,
            local: Some(absolute),
        })
    }

    /// The URL, for messages and reports.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The object store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The staged table `name` (`keyspace.table`) under this root.
    pub fn table(&self, name: &str) -> TableLocation {
        TableLocation {
            url: format!("{}/{name}", self.url),
            store: Arc::clone(&self.store),
            prefix: self.prefix.clone().join(name),
            local: self.local.as_ref().map(|dir| dir.join(name)),
        }
    }

    /// The staged tables under this root: every `keyspace.table` folder holding a manifest.
    pub async fn tables(&self) -> Result<Vec<String>> {
        let listing = self
            .store
            .list_with_delimiter(Some(&self.prefix))
            .await
            .map_err(|source| ConnectorError::ObjectStore {
                what: "listing".into(),
                path: self.url.clone(),
                source,
            })?;
        let mut names = BTreeSet::new();
        for dir in listing.common_prefixes {
            let Some(name) = dir.filename() else { continue };
            if name
                .split_once('.')
                .is_some_and(|(k, t)| !k.is_empty() && !t.is_empty())
                && self.table(name).exists().await?
            {
                names.insert(name.to_string());
            }
        }
        Ok(names.into_iter().collect())
    }
}

/// Makes `a/./b/../c` into `a/c` without touching the file system (the directory may not exist).
fn normalize(path: &FsPath) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn s3(url: &str, config: &StagingConfig) -> Result<object_store::aws::AmazonS3> {
    let mut builder = AmazonS3Builder::from_env().with_url(url);
    // `AWS_REGION` is what the AWS tools set; object_store reads `AWS_DEFAULT_REGION`.
    if config.region.is_none()
        && let Ok(region) = std::env::var("AWS_REGION")
    {
        builder = builder.with_region(region);
    }
    if let Some(region) = &config.region {
        builder = builder.with_region(region);
    }
    if let Some(endpoint) = &config.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    if let Some(allow) = config.allow_http {
        builder = builder.with_allow_http(allow);
    }
    if let Some(key) = &config.access_key_id {
        builder = builder.with_access_key_id(key);
    }
    if let Some(secret) = &config.secret_access_key {
        builder = builder.with_secret_access_key(secret.expose());
    }
    if let Some(token) = &config.session_token {
        builder = builder.with_token(token.expose());
    }
    for (key, value) in &config.options {
        let key: AmazonS3ConfigKey = key.parse().map_err(|_| unknown_option(key, "s3://"))?;
        builder = builder.with_config(key, value.expose());
    }
    builder.build().map_err(|e| store_config_err(url, e))
}

/// One config may serve dumps to several places: S3 settings are ignored elsewhere, said once.
fn ignore_s3_settings(url: &str, config: &StagingConfig) {
    let set = config.s3_settings();
    if !set.is_empty() {
        tracing::warn!(
            url,
            settings = %set.join(", "),
            "these [staging] settings apply to s3:// URLs only; ignored for this URL"
        );
    }
}

fn unknown_option(key: &str, scheme: &str) -> ConnectorError {
    config_err(format!(
        "staging.options: `{key}` is not an object store option for {scheme} URLs (see \
         docs/staging.md for the keys)"
    ))
}

fn store_config_err(url: &str, e: object_store::Error) -> ConnectorError {
    config_err(format!("cannot open {url}: {e}"))
}

/// One staged table: `<root>/<keyspace>.<table>/`.
#[derive(Clone)]
pub struct TableLocation {
    url: String,
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    local: Option<PathBuf>,
}

impl fmt::Debug for TableLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableLocation")
            .field("url", &self.url)
            .finish()
    }
}

impl TableLocation {
    /// `<root>/<keyspace>.<table>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The object store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The object of `file` in this table's folder.
    pub fn path(&self, file: &str) -> Path {
        self.prefix.clone().join(file)
    }

    /// `file`'s full URL, for messages.
    pub fn display(&self, file: &str) -> String {
        format!("{}/{file}", self.url)
    }

    fn store_err(&self, what: &str, file: &str, source: object_store::Error) -> ConnectorError {
        ConnectorError::ObjectStore {
            what: what.into(),
            path: self.display(file),
            source,
        }
    }

    /// Whether the table has a manifest.
    pub async fn exists(&self) -> Result<bool> {
        match self.store.head(&self.path(MANIFEST_FILE)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.store_err("reading", MANIFEST_FILE, e)),
        }
    }

    /// The manifest, or `None` when there is none. A manifest that cannot be read is an error
    /// naming it.
    pub async fn read_manifest(&self) -> Result<Option<Manifest>> {
        let bytes = match self.store.get(&self.path(MANIFEST_FILE)).await {
            Ok(found) => found
                .bytes()
                .await
                .map_err(|e| self.store_err("reading", MANIFEST_FILE, e))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.store_err("reading", MANIFEST_FILE, e)),
        };
        Manifest::from_json(&bytes, &self.display(MANIFEST_FILE)).map(Some)
    }

    /// The manifest, which must be there.
    pub async fn manifest(&self) -> Result<Manifest> {
        self.read_manifest()
            .await?
            .ok_or_else(|| ConnectorError::Staged {
                path: self.display(MANIFEST_FILE),
                message: "no such file: nothing was dumped here (run `ferry dump` first, or \
                          check the URL)"
                    .into(),
            })
    }

    /// Replaces the manifest, in one put: readers see the old one or the new one.
    pub async fn write_manifest(&self, manifest: &Manifest) -> Result<()> {
        let json = manifest.to_json();
        self.store
            .put(
                &self.path(MANIFEST_FILE),
                PutPayload::from_bytes(Bytes::from(json)),
            )
            .await
            .map_err(|e| self.store_err("writing", MANIFEST_FILE, e))?;
        Ok(())
    }

    /// The objects directly in this table's folder.
    pub async fn list(&self) -> Result<Vec<ObjectMeta>> {
        let listing = self
            .store
            .list_with_delimiter(Some(&self.prefix))
            .await
            .map_err(|e| self.store_err("listing", "", e))?;
        Ok(listing.objects)
    }

    /// The size of `file`, or `None` when it is missing.
    pub async fn size(&self, file: &str) -> Result<Option<u64>> {
        match self.store.head(&self.path(file)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.store_err("reading", file, e)),
        }
    }

    /// Deletes `file`; a missing file is not an error.
    pub async fn delete(&self, file: &str) -> Result<()> {
        match self.store.delete(&self.path(file)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.store_err("deleting", file, e)),
        }
    }

    /// Deletes every split file that `keep` does not name, and on a local disk every unfinished
    /// write (`<name>#<n>`) too. Other files are left alone. Returns the names deleted.
    pub async fn remove_strays(&self, keep: &BTreeSet<String>) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for meta in self.list().await? {
            let Some(name) = meta.location.filename() else {
                continue;
            };
            if is_split_file(name) && !keep.contains(name) {
                self.delete(name).await?;
                removed.push(name.to_string());
            }
        }
        if let Some(dir) = &self.local {
            // object_store's listings hide these; only the file system shows them.
            match std::fs::read_dir(dir) {
                Ok(entries) => {
                    for entry in entries.flatten() {
                        let name = entry.file_name().to_string_lossy().into_owned();
                        if let Some((base, n)) = name.split_once('#')
                            && is_split_file(base)
                            && n.chars().all(|c| c.is_ascii_digit())
                        {
                            std::fs::remove_file(entry.path()).map_err(|e| {
                                ConnectorError::ObjectStore {
                                    what: "deleting".into(),
                                    path: entry.path().display().to_string(),
                                    source: object_store::Error::Generic {
                                        store: "LocalFileSystem",
                                        source: Box::new(e),
                                    },
                                }
                            })?;
                            removed.push(name);
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(ConnectorError::ObjectStore {
                        what: "listing".into(),
                        path: dir.display().to_string(),
                        source: object_store::Error::Generic {
                            store: "LocalFileSystem",
                            source: Box::new(e),
                        },
                    });
                }
            }
        }
        Ok(removed)
    }

    /// Deletes the manifest and every split file (`ferry dump --restart`).
    pub async fn clear(&self) -> Result<()> {
        self.remove_strays(&BTreeSet::new()).await?;
        self.delete(MANIFEST_FILE).await
    }

    /// Every object under this table's folder, for tests and tools.
    pub async fn list_all(&self) -> Result<Vec<ObjectMeta>> {
        self.store
            .list(Some(&self.prefix))
            .try_collect()
            .await
            .map_err(|e| self.store_err("listing", "", e))
    }
}

/// `split-<k>-<n>.parquet`.
pub fn split_file_name(split: usize, file: usize) -> String {
    format!("split-{split:05}-{file:03}.parquet")
}

/// Whether `name` is a split file's name.
pub fn is_split_file(name: &str) -> bool {
    name.strip_prefix("split-")
        .and_then(|rest| rest.strip_suffix(".parquet"))
        .and_then(|rest| rest.split_once('-'))
        .is_some_and(|(k, n)| {
            !k.is_empty()
                && !n.is_empty()
                && k.chars().all(|c| c.is_ascii_digit())
                && n.chars().all(|c| c.is_ascii_digit())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_file_names() {
        assert_eq!(split_file_name(7, 0), "split-00007-000.parquet");
        assert_eq!(split_file_name(123_456, 1000), "split-123456-1000.parquet");
        assert!(is_split_file("split-00007-000.parquet"));
        assert!(!is_split_file("split-7.parquet"));
        assert!(!is_split_file("_manifest.json"));
        assert!(!is_split_file("split-00007-000.parquet#3"));
        assert!(!is_split_file("notes.parquet"));
    }

    #[test]
    fn urls_choose_their_store() {
        let config = StagingConfig::default();
        let base = std::env::temp_dir();
        let local = StagingLocation::open("staged/../out", &config, &base).expect("a path");
        assert!(local.url().ends_with("/out"), "{}", local.url());
        assert!(!local.url().contains(".."), "{}", local.url());
        let file = StagingLocation::open("file:///var/tmp/x/", &config, &base).expect("file://");
        assert_eq!(file.url(), "/var/tmp/x");
        assert_eq!(file.table("ks.t").url(), "/var/tmp/x/ks.t");
        let s3 = StagingLocation::open("s3://bucket/some/prefix/", &config, &base).expect("s3");
        assert_eq!(s3.table("ks.t").url(), "s3://bucket/some/prefix/ks.t");
        assert_eq!(
            s3.table("ks.t").path("_manifest.json").as_ref(),
            "some/prefix/ks.t/_manifest.json"
        );
        let err = StagingLocation::open("ftp://host/x", &config, &base).expect_err("ftp");
        assert!(
            err.to_string().contains("unsupported scheme `ftp`"),
            "{err}"
        );
    }

    #[test]
    fn unknown_options_are_refused_s3_settings_ignored_elsewhere() {
        let config: StagingConfig =
            toml::from_str("endpoint = \"http://127.0.0.1:9000\"").expect("parses");
        StagingLocation::open("/tmp/x", &config, FsPath::new("/")).expect("local, endpoint unused");
        let config: StagingConfig =
            toml::from_str("[options]\naws_no_such_key = \"1\"").expect("parses");
        let err = StagingLocation::open("s3://b/p", &config, FsPath::new("/")).expect_err("key");
        assert!(err.to_string().contains("`aws_no_such_key`"), "{err}");
    }
}
