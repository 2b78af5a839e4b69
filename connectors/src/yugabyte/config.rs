//! Target connection options (the `[target]` section of `ferry.toml`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use serde::Deserialize;
use tokio_postgres::config::{Host, SslMode};

use crate::error::{ConnectorError, Result};
use crate::secret::Secret;
use crate::tls::{TlsConfig, TlsMode};

/// How Ferry connects to YugabyteDB (or PostgreSQL).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct YugabyteConfig {
    /// A `postgresql://user@host1:port1,host2:port2/db` URL. Put the password in `password` or
    /// `password_file`, not here, so it can come from the environment; a password in the URL
    /// works but is never logged. `sslmode` (`disable`, `require`, `verify-ca`, `verify-full`),
    /// `sslrootcert`, `sslcert` and `sslkey` in the URL are honoured when there is no
    /// `[target.tls]`.
    pub url: Secret,
    /// The password, overriding one in the URL.
    #[serde(default)]
    pub password: Option<Secret>,
    /// A file holding the password (its first line), instead of `password`. Relative to the
    /// config file.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Schema that unqualified target table names resolve to. Default `public`.
    #[serde(default = "default_schema")]
    pub schema: String,
    /// Connection timeout in milliseconds. Default 10000.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// TLS toward the target (`[target.tls]`). Default: the URL's `sslmode`, else plaintext.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Where to place connections on YugabyteDB: `cloud.region.zone` keys (`*` for any zone
    /// of a region), each with an optional `:priority` (1 = first choice, the default).
    /// Empty (the default): every server.
    #[serde(default)]
    pub topology_keys: Vec<String>,
    /// With `topology_keys`: when no server matching any key is up, fail rather than place
    /// connections on any other server. Default false.
    #[serde(default)]
    pub fallback_to_topology_keys_only: bool,
    /// How often the server list (`yb_servers()`) is read again, in seconds. Default 300.
    #[serde(default = "default_refresh_s")]
    pub placement_refresh_s: u64,
    /// How long a server that failed is left out of placement, in seconds. Default 60.
    #[serde(default = "default_quarantine_s")]
    pub quarantine_s: u64,
}

fn default_schema() -> String {
    "public".to_string()
}

fn default_connect_timeout_ms() -> u64 {
    10_000
}

fn default_refresh_s() -> u64 {
    300
}

fn default_quarantine_s() -> u64 {
    60
}

/// One server address, `host:port`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    /// `host:port`.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A checked, ready-to-use target: driver settings (credentials, TLS) for any one host,
/// and the hosts of the URL.
#[derive(Clone)]
pub struct Target {
    /// Driver settings without hosts; the password is in here.
    pub(crate) pg: tokio_postgres::Config,
    /// The URL's hosts, in order.
    pub hosts: Vec<Endpoint>,
    /// `None` for plaintext.
    pub(crate) tls: Option<Arc<ClientConfig>>,
    /// The TLS settings in effect (from `[target.tls]` or the URL), for messages.
    pub tls_settings: TlsConfig,
    /// `hosts/db`, without credentials.
    pub display: String,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("hosts", &self.hosts)
            .field("tls", &self.tls_settings.mode)
            .field("display", &self.display)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// The application name connections announce (`pg_stat_activity.application_name`).
    pub fn application_name(&self) -> &str {
        self.pg.get_application_name().unwrap_or("ferry")
    }
}

impl YugabyteConfig {
    /// A configuration with defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: Secret::new(url),
            password: None,
            password_file: None,
            schema: default_schema(),
            connect_timeout_ms: default_connect_timeout_ms(),
            tls: None,
            topology_keys: Vec::new(),
            fallback_to_topology_keys_only: false,
            placement_refresh_s: default_refresh_s(),
            quarantine_s: default_quarantine_s(),
        }
    }

    /// Makes relative file paths (`password_file`, `tls.*_file`) relative to `base_dir`, the
    /// directory of the config file.
    pub fn resolve_paths(&mut self, base_dir: &Path) {
        if let Some(path) = self.password_file.as_mut().filter(|p| p.is_relative()) {
            *path = base_dir.join(&*path);
        }
        if let Some(tls) = &mut self.tls {
            tls.resolve_paths(base_dir);
        }
    }

    /// Checks what serde cannot: the URL, the password source, TLS, topology keys.
    pub fn validate(&self) -> Result<()> {
        if self.password.is_some() && self.password_file.is_some() {
            return Err(invalid(
                "set either password or password_file, not both".into(),
            ));
        }
        for key in &self.topology_keys {
            super::placement::TopologyKey::parse(key)?;
        }
        let (_, url_tls) = split_tls_params(self.url.expose())?;
        self.tls_settings(url_tls)?
            .validate("target.tls", "the target servers")
    }

    /// The driver configuration, with the password applied, for the URL's hosts.
    pub fn pg_config(&self) -> Result<tokio_postgres::Config> {
        let (url, _) = split_tls_params(self.url.expose())?;
        let mut config = tokio_postgres::Config::from_str(&url).map_err(|e| {
            invalid(format!(
                "url is not a valid postgresql:// URL (postgresql://user@host1:port1,host2:port2/db): {e}"
            ))
        })?;
        if let Some(p) = &self.password {
            config.password(p.expose());
        } else if let Some(path) = &self.password_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                invalid(format!("cannot read password_file {}: {e}", path.display()))
            })?;
            config.password(text.lines().next().unwrap_or_default());
        }
        config.connect_timeout(Duration::from_millis(self.connect_timeout_ms));
        if config.get_application_name().is_none() {
            config.application_name("ferry");
        }
        Ok(config)
    }

    /// Everything needed to connect: checks the config, reads the password file and the TLS
    /// files, and lists the URL's hosts.
    pub fn target(&self) -> Result<Target> {
        self.validate()?;
        let (_, url_tls) = split_tls_params(self.url.expose())?;
        let tls_settings = self.tls_settings(url_tls)?;
        let tls = crate::tls::client_config(&tls_settings, "target.tls", "the target servers")?;
        let mut pg = self.pg_config()?;
        pg.ssl_mode(match tls {
            None => SslMode::Disable,
            Some(_) => SslMode::Require,
        });
        let ports = pg.get_ports();
        let mut hosts = Vec::new();
        for (i, host) in pg.get_hosts().iter().enumerate() {
            let port = match ports.len() {
                0 => 5432,
                1 => ports[0],
                _ => ports.get(i).copied().unwrap_or(5432),
            };
            match host {
                Host::Tcp(h) => hosts.push(Endpoint::new(h.clone(), port)),
                Host::Unix(p) => {
                    return Err(invalid(format!(
                        "url host {} is a Unix socket; Ferry connects over TCP only",
                        p.display()
                    )));
                }
            }
        }
        if hosts.is_empty() {
            return Err(invalid("url names no host".into()));
        }
        let display = format!(
            "{}/{}",
            hosts
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
            pg.get_dbname().unwrap_or("")
        );
        Ok(Target {
            pg,
            hosts,
            tls,
            tls_settings,
            display,
        })
    }

    /// `host:port,…/db` without credentials, for messages.
    pub fn display_target(&self) -> String {
        match self.target() {
            Ok(t) => t.display,
            Err(_) => "<invalid url>".to_string(),
        }
    }

    /// `[target.tls]` if present, else the URL's `ssl*` parameters.
    fn tls_settings(&self, url: UrlTls) -> Result<TlsConfig> {
        match &self.tls {
            Some(tls) => {
                if url.mode.is_some()
                    || url.ca_file.is_some()
                    || url.cert_file.is_some()
                    || url.key_file.is_some()
                {
                    return Err(invalid(
                        "TLS is set both in [target.tls] and in the url (sslmode/sslrootcert/\
                         sslcert/sslkey); keep one"
                            .into(),
                    ));
                }
                Ok(tls.clone())
            }
            None => {
                let mode = match url.mode.as_deref() {
                    None => TlsMode::Disable,
                    Some("prefer" | "allow") => {
                        return Err(invalid(
                            "url sslmode=prefer/allow is not supported: Ferry does not fall back \
                             to plaintext silently; use sslmode=require, verify-ca, verify-full \
                             or disable"
                                .into(),
                        ));
                    }
                    Some(m) => {
                        TlsMode::from_str(m).map_err(|e| invalid(format!("url sslmode: {e}")))?
                    }
                };
                Ok(TlsConfig {
                    mode,
                    ca_file: url.ca_file,
                    cert_file: url.cert_file,
                    key_file: url.key_file,
                })
            }
        }
    }
}

fn invalid(message: String) -> ConnectorError {
    ConnectorError::Config {
        section: "target",
        message,
    }
}

/// The TLS parameters of a URL's query string.
#[derive(Debug, Default, PartialEq, Eq)]
struct UrlTls {
    mode: Option<String>,
    ca_file: Option<PathBuf>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
}

/// Takes `sslmode`, `sslrootcert`, `sslcert` and `sslkey` out of a URL's query string: the
/// driver knows only `disable | prefer | require` and no certificate files.
fn split_tls_params(url: &str) -> Result<(String, UrlTls)> {
    let mut tls = UrlTls::default();
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), tls));
    };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value)
            .ok_or_else(|| invalid(format!("url parameter {key} is not valid percent-encoding")))?;
        match key {
            "sslmode" => tls.mode = Some(value),
            "sslrootcert" => tls.ca_file = Some(value.into()),
            "sslcert" => tls.cert_file = Some(value.into()),
            "sslkey" => tls.key_file = Some(value.into()),
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, tls))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> YugabyteConfig {
        toml::from_str(text).expect("valid [target]")
    }

    fn error(config: &YugabyteConfig) -> String {
        match config.target() {
            Err(e) => e.to_string(),
            Ok(t) => panic!("expected an error, got {t:?}"),
        }
    }

    #[test]
    fn lists_every_host_of_the_url() {
        let c = YugabyteConfig::new("postgresql://u:pw@h1:5433,h2:5434,[::1]:5435/db");
        let t = c.target().expect("valid");
        assert_eq!(
            t.hosts,
            vec![
                Endpoint::new("h1", 5433),
                Endpoint::new("h2", 5434),
                Endpoint::new("::1", 5435)
            ]
        );
        assert_eq!(t.display, "h1:5433,h2:5434,[::1]:5435/db");
        assert!(!format!("{t:?}").contains("pw"));
        let one_port = YugabyteConfig::new("postgresql://u@h1,h2:6000/db")
            .target()
            .expect("valid");
        assert_eq!(one_port.hosts[0].port, 5432);
        assert_eq!(one_port.hosts[1].port, 6000);
    }

    #[test]
    fn password_comes_from_the_config_or_a_file() {
        let dir = std::env::temp_dir().join(format!("ferry-pw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("pw"), "s3cret\nignored\n").expect("write");
        let mut c = parse("url = \"postgresql://u:inurl@h/db\"\npassword_file = \"pw\"\n");
        c.resolve_paths(&dir);
        let t = c.target().expect("valid");
        assert_eq!(t.pg.get_password(), Some(&b"s3cret"[..]));
        c.password = Some(Secret::new("x"));
        assert!(error(&c).contains("either password or password_file"));
        c.password_file = Some(dir.join("missing"));
        c.password = None;
        let e = error(&c);
        assert!(
            e.contains("cannot read password_file") && e.contains("missing"),
            "{e}"
        );
        assert!(!format!("{c:?}").contains("inurl"));
    }

    #[test]
    fn tls_comes_from_the_section_or_the_url() {
        let c = YugabyteConfig::new("postgresql://u@h:5432/db?sslmode=require&application_name=x");
        let t = c.target().expect("valid");
        assert_eq!(t.tls_settings.mode, TlsMode::Require);
        assert!(t.tls.is_some());
        assert_eq!(t.application_name(), "x");
        assert_eq!(t.pg.get_ssl_mode(), SslMode::Require);

        let c = YugabyteConfig::new("postgresql://u@h/db?sslmode=verify-full");
        assert!(error(&c).contains("needs ca_file"), "{}", error(&c));
        let c = YugabyteConfig::new(
            "postgresql://u@h/db?sslmode=verify-full&sslrootcert=%2Fno%2Fca.pem",
        );
        let e = error(&c);
        assert!(e.contains("target.tls") && e.contains("/no/ca.pem"), "{e}");
        let c = YugabyteConfig::new("postgresql://u@h/db?sslmode=prefer");
        assert!(error(&c).contains("sslmode=prefer"));

        let mut c =
            parse("url = \"postgresql://u@h/db?sslmode=require\"\n[tls]\nmode = \"require\"\n");
        assert!(error(&c).contains("both in [target.tls] and in the url"));
        c.url = Secret::new("postgresql://u@h/db");
        let t = c.target().expect("valid");
        assert_eq!(t.tls_settings.mode, TlsMode::Require);
        assert_eq!(t.application_name(), "ferry");

        let t = YugabyteConfig::new("postgresql://u@h/db")
            .target()
            .expect("valid");
        assert!(t.tls.is_none());
        assert_eq!(t.pg.get_ssl_mode(), SslMode::Disable);
    }

    #[test]
    fn placement_fields_have_defaults() {
        let c = parse("url = \"postgresql://u@h/db\"\n");
        assert!(c.topology_keys.is_empty());
        assert!(!c.fallback_to_topology_keys_only);
        assert_eq!((c.placement_refresh_s, c.quarantine_s), (300, 60));
        let c = parse(
            "url = \"postgresql://u@h/db\"\ntopology_keys = [\"c.r.z\", \"c.r.*:2\"]\n\
             fallback_to_topology_keys_only = true\nquarantine_s = 5\n",
        );
        assert_eq!(c.topology_keys.len(), 2);
        c.validate().expect("valid");
        let c = parse("url = \"postgresql://u@h/db\"\ntopology_keys = [\"c.r\"]\n");
        assert!(c.validate().is_err());
    }
}
