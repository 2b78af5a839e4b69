//! TLS settings shared by every connector: the `[source.tls]` / `[target.tls]` section, and the
//! rustls client configuration built from it.
//!
//! The crypto provider is `ring`, chosen here explicitly rather than through rustls' process
//! default: the scylla driver's own rustls dependency compiles in `aws-lc-rs` as well, and with
//! two providers compiled in `ClientConfig::builder()` cannot pick one by itself.
//!
//! `verify-ca` checks the chain and ignores the names; `verify-full` also checks that the
//! certificate names the server Ferry connected to (its DNS name or IP, as the driver hands it
//! to rustls). Each connector turns handshake failures into hints of its own, from
//! [`classify_handshake`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use serde::Deserialize;

use crate::error::{ConnectorError, Result};

/// A `[*.tls]` section: whether and how a connection is encrypted and verified.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// `disable` (the default: plaintext), `require` (encrypt, verify nothing), `verify-ca`
    /// (the server's certificate must chain to `ca_file`) or `verify-full` (also, the
    /// certificate must name the address Ferry connected to).
    #[serde(default)]
    pub mode: TlsMode,
    /// PEM file of the CA certificate(s) that signed the servers' certificates. Required by
    /// `verify-ca` and `verify-full`. Relative to the config file.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (chain) for mutual TLS, with `key_file`. Relative to the config file.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `cert_file`. Relative to the config file.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

impl TlsConfig {
    /// Checks that the files set fit the mode. `section` (`source.tls`) and `servers`
    /// ("the Cassandra nodes") make the messages.
    pub fn validate(&self, section: &'static str, servers: &str) -> Result<()> {
        let invalid = |message: String| ConnectorError::Config { section, message };
        match self.mode {
            TlsMode::Disable => {
                if self.ca_file.is_some() || self.cert_file.is_some() || self.key_file.is_some() {
                    return Err(invalid(
                        "ca_file/cert_file/key_file are set but mode is \"disable\" (plaintext); \
                         set mode = \"verify-full\" (or \"verify-ca\") to use them"
                            .into(),
                    ));
                }
                return Ok(());
            }
            TlsMode::Require => {
                if self.ca_file.is_some() {
                    return Err(invalid(
                        "ca_file is set but mode = \"require\" does not verify the server; \
                         set mode = \"verify-ca\" or \"verify-full\", or remove ca_file"
                            .into(),
                    ));
                }
            }
            TlsMode::VerifyCa | TlsMode::VerifyFull => {
                if self.ca_file.is_none() {
                    return Err(invalid(format!(
                        "mode = \"{}\" needs ca_file: the PEM file of the CA that signed \
                         {servers}' certificates",
                        self.mode
                    )));
                }
            }
        }
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err(invalid(
                "cert_file and key_file go together (mutual TLS): set both or neither".into(),
            ));
        }
        Ok(())
    }

    /// Makes relative file paths relative to `base_dir`, the directory of the config file.
    pub fn resolve_paths(&mut self, base_dir: &Path) {
        for p in [&mut self.ca_file, &mut self.cert_file, &mut self.key_file] {
            if let Some(path) = p.as_mut().filter(|p| p.is_relative()) {
                *path = base_dir.join(&*path);
            }
        }
    }
}

/// How a connection is secured, named as in libpq's `sslmode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// Plaintext.
    #[default]
    Disable,
    /// Encrypted; the server's certificate is not checked (no protection from an active
    /// man in the middle).
    Require,
    /// Encrypted; the server's certificate must chain to `ca_file`. Its names are not checked.
    VerifyCa,
    /// Encrypted; the certificate must chain to `ca_file` and name the server's address.
    VerifyFull,
}

impl std::fmt::Display for TlsMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsMode::Disable => "disable",
            TlsMode::Require => "require",
            TlsMode::VerifyCa => "verify-ca",
            TlsMode::VerifyFull => "verify-full",
        })
    }
}

impl std::str::FromStr for TlsMode {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "disable" => Ok(TlsMode::Disable),
            "require" => Ok(TlsMode::Require),
            "verify-ca" => Ok(TlsMode::VerifyCa),
            "verify-full" => Ok(TlsMode::VerifyFull),
            other => Err(format!(
                "unknown TLS mode {other:?}: use disable, require, verify-ca or verify-full"
            )),
        }
    }
}

/// The rustls configuration for `tls`, or `None` for `mode = "disable"`. Errors name
/// `section` and the file at fault.
pub fn client_config(
    tls: &TlsConfig,
    section: &'static str,
    servers: &str,
) -> Result<Option<Arc<ClientConfig>>> {
    tls.validate(section, servers)?;
    if tls.mode == TlsMode::Disable {
        return Ok(None);
    }
    let invalid = |message: String| ConnectorError::Config { section, message };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| {
            invalid(format!(
                "the ring crypto provider cannot do TLS 1.2/1.3: {e}"
            ))
        })?;
    let builder = match (tls.mode, &tls.ca_file) {
        (TlsMode::Require, _) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(
                provider.signature_verification_algorithms,
            ))),
        (TlsMode::VerifyCa, Some(ca_file)) => {
            let chain = WebPkiServerVerifier::builder_with_provider(
                Arc::new(root_store(ca_file, section)?),
                provider.clone(),
            )
            .build()
            .map_err(|e| invalid(format!("ca_file {}: {e}", ca_file.display())))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly(chain)))
        }
        (TlsMode::VerifyFull, Some(ca_file)) => {
            builder.with_root_certificates(root_store(ca_file, section)?)
        }
        // validate() refused these.
        (TlsMode::Disable | TlsMode::VerifyCa | TlsMode::VerifyFull, _) => {
            return Err(invalid(format!("mode = \"{}\" needs ca_file", tls.mode)));
        }
    };
    let config = match (&tls.cert_file, &tls.key_file) {
        (Some(cert_file), Some(key_file)) => {
            let certs = certificates(cert_file, "cert_file", section)?;
            let key = read(key_file, "key_file", section).and_then(|pem| {
                PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
                    invalid(format!(
                        "key_file {}: no PEM private key (PKCS#8, PKCS#1 or SEC1) in it: {e}",
                        key_file.display()
                    ))
                })
            })?;
            builder.with_client_auth_cert(certs, key).map_err(|e| {
                invalid(format!(
                    "cert_file {} and key_file {} do not make a usable client identity: {e}",
                    cert_file.display(),
                    key_file.display()
                ))
            })?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Some(Arc::new(config)))
}

/// Why a TLS handshake failed, recognised from a driver's error text (drivers flatten rustls'
/// error into text, so this matches both rustls' `Debug` names and its `Display` texts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeFailure {
    /// The certificate does not chain to the configured CA.
    UnknownIssuer,
    /// The certificate does not name the address connected to.
    NameMismatch,
    /// The certificate is expired or not yet valid.
    Expired,
    /// The server did not answer in TLS at all.
    NotTls,
    /// The server refused the handshake (often: it wants a client certificate).
    Refused,
    /// Something else about TLS.
    Other,
}

/// Classifies a connection error `message`, or `None` when it does not look like TLS.
pub fn classify_handshake(message: &str) -> Option<HandshakeFailure> {
    let m = message.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| m.contains(n));
    Some(
        if has(&[
            "unknownissuer",
            "unknown issuer",
            "badsignature",
            "bad signature",
        ]) {
            HandshakeFailure::UnknownIssuer
        } else if has(&["notvalidforname", "not valid for name"]) {
            HandshakeFailure::NameMismatch
        } else if has(&["expired", "notvalidyet", "not valid yet"]) {
            HandshakeFailure::Expired
        } else if has(&[
            "corruptmessage",
            "corrupt message",
            "invalidcontenttype",
            "invalidmessage",
            "does not support tls",
        ]) {
            HandshakeFailure::NotTls
        } else if has(&[
            "certificaterequired",
            "certificate required",
            "handshakefailure",
        ]) {
            HandshakeFailure::Refused
        } else if has(&["peer certificate", "tls", "handshake"]) {
            HandshakeFailure::Other
        } else {
            return None;
        },
    )
}

fn read(path: &Path, field: &str, section: &'static str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| ConnectorError::Config {
        section,
        message: format!("cannot read {field} {}: {e}", path.display()),
    })
}

fn certificates(
    path: &Path,
    field: &str,
    section: &'static str,
) -> Result<Vec<CertificateDer<'static>>> {
    let invalid = |message: String| ConnectorError::Config { section, message };
    let pem = read(path, field, section)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("{field} {}: bad PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(invalid(format!(
            "{field} {}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it",
            path.display()
        )));
    }
    Ok(certs)
}

fn root_store(ca_file: &Path, section: &'static str) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(ca_file, "ca_file", section)? {
        roots.add(cert).map_err(|e| ConnectorError::Config {
            section,
            message: format!(
                "ca_file {}: not a usable CA certificate: {e}",
                ca_file.display()
            ),
        })?;
    }
    Ok(roots)
}

/// `require`: accepts any certificate, but still checks that the server holds its key.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// `verify-ca`: the webpki chain check, with a name mismatch forgiven. webpki checks the chain
/// (and validity dates) before the name, so a name error means the chain was good.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
