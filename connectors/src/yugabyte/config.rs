//! Target connection options (the `[target]` section of `ferry.toml`).

use std::str::FromStr;

use serde::Deserialize;

use crate::error::{ConnectorError, Result};
use crate::secret::Secret;

/// How Ferry connects to YugabyteDB (or PostgreSQL).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct YugabyteConfig {
    /// A `postgresql://user@host:port/db` URL. Put the password in `password`, not here, so it
    /// can come from the environment (`password = "${FERRY_TARGET_PASSWORD}"`); a password in
    /// the URL works but is never logged.
    pub url: Secret,
    /// The password, overriding one in the URL.
    #[serde(default)]
    pub password: Option<Secret>,
    /// Schema that unqualified target table names resolve to. Default `public`.
    #[serde(default = "default_schema")]
    pub schema: String,
    /// Connection timeout in milliseconds. Default 10000.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
}

fn default_schema() -> String {
    "public".to_string()
}

fn default_connect_timeout_ms() -> u64 {
    10_000
}

impl YugabyteConfig {
    /// A configuration with defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: Secret::new(url),
            password: None,
            schema: default_schema(),
            connect_timeout_ms: default_connect_timeout_ms(),
        }
    }

    /// The driver configuration, with the password applied.
    pub fn pg_config(&self) -> Result<tokio_postgres::Config> {
        let mut config = tokio_postgres::Config::from_str(self.url.expose()).map_err(|e| {
            ConnectorError::Config {
                section: "target",
                message: format!("target url is not a valid postgresql:// URL: {e}"),
            }
        })?;
        if let Some(p) = &self.password {
            config.password(p.expose());
        }
        config.connect_timeout(std::time::Duration::from_millis(self.connect_timeout_ms));
        config.application_name("ferry");
        Ok(config)
    }

    /// `host:port/db` without credentials, for messages.
    pub fn display_target(&self) -> String {
        match self.pg_config() {
            Ok(c) => {
                let hosts: Vec<String> = c
                    .get_hosts()
                    .iter()
                    .zip(c.get_ports().iter().chain(std::iter::repeat(&5432)))
                    .map(|(h, p)| match h {
                        tokio_postgres::config::Host::Tcp(h) => format!("{h}:{p}"),
                        tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                    })
                    .collect();
                format!("{}/{}", hosts.join(","), c.get_dbname().unwrap_or(""))
            }
            Err(_) => "<invalid url>".to_string(),
        }
    }
}
