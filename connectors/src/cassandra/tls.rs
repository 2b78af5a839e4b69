//! TLS toward Cassandra: a rustls client configuration built from `[source.tls]`, and the
//! hints that turn a failed handshake into something a user can act on.
//!
//! The crypto provider is `ring`, chosen here explicitly rather than through rustls' process
//! default: the scylla driver's own rustls dependency compiles in `aws-lc-rs` as well, and with
//! two providers compiled in `ClientConfig::builder()` cannot pick one by itself.
//!
//! The driver hands rustls the node's IP address as the server name, so `verify-full` checks
//! the certificate's IP SANs; `verify-ca` checks the chain and ignores the names.

use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use super::config::{CassandraTlsConfig, TlsMode};
use crate::error::{ConnectorError, Result};

/// The rustls configuration for `tls`, or `None` for `mode = "disable"`.
pub fn client_config(tls: &CassandraTlsConfig) -> Result<Option<Arc<ClientConfig>>> {
    tls.validate()?;
    if tls.mode == TlsMode::Disable {
        return Ok(None);
    }
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
                Arc::new(root_store(ca_file)?),
                provider.clone(),
            )
            .build()
            .map_err(|e| invalid(format!("ca_file {}: {e}", ca_file.display())))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly(chain)))
        }
        (TlsMode::VerifyFull, Some(ca_file)) => {
            builder.with_root_certificates(root_store(ca_file)?)
        }
        // validate() refused these.
        (TlsMode::Disable | TlsMode::VerifyCa | TlsMode::VerifyFull, _) => {
            return Err(invalid(format!("mode = \"{}\" needs ca_file", tls.mode)));
        }
    };
    let config = match (&tls.cert_file, &tls.key_file) {
        (Some(cert_file), Some(key_file)) => {
            let certs = certificates(cert_file, "cert_file")?;
            let key = read(key_file, "key_file").and_then(|pem| {
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

/// What to tell the user when connecting with TLS failed with `message`, if it looks like TLS
/// was the reason. The driver flattens rustls' error into text, so this matches both rustls'
/// `Debug` names (`UnknownIssuer`) and its `Display` texts ("certificate not valid for name").
pub fn handshake_hint(tls: &CassandraTlsConfig, message: &str) -> Option<String> {
    let m = message.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| m.contains(n));
    let ca = tls
        .ca_file
        .as_deref()
        .map_or_else(String::new, |p| p.display().to_string());
    if has(&[
        "unknownissuer",
        "unknown issuer",
        "badsignature",
        "bad signature",
    ]) {
        Some(format!(
            "the node's certificate is not signed by the CA in tls.ca_file {ca}; point ca_file at \
             the CA that signed the Cassandra nodes' certificates"
        ))
    } else if has(&["notvalidforname", "not valid for name"]) {
        Some(
            "the node's certificate does not name the address Ferry connected to (verify-full \
             checks the node's IP against the certificate's IP SANs); reissue the certificate with \
             that IP, or use mode = \"verify-ca\""
                .into(),
        )
    } else if has(&["expired", "notvalidyet", "not valid yet"]) {
        Some("the node's certificate is expired or not yet valid; check it and the clock".into())
    } else if has(&[
        "corruptmessage",
        "corrupt message",
        "invalidcontenttype",
        "invalidmessage",
    ]) {
        Some(
            "the node did not answer TLS: enable client_encryption_options in its cassandra.yaml, \
             or use tls.mode = \"disable\""
                .into(),
        )
    } else if has(&[
        "certificaterequired",
        "certificate required",
        "handshakefailure",
    ]) {
        Some(
            "the node refused the TLS handshake; if it requires client certificates \
             (require_client_auth), set tls.cert_file and tls.key_file"
                .into(),
        )
    } else if has(&["connection broken"]) && tls.cert_file.is_none() {
        // With TLS 1.3 the server checks the client's certificate after the client thinks the
        // handshake is done: its alert can lose the race with the connection being closed.
        Some(
            "the node closed the connection right after the TLS handshake; if it requires client \
             certificates (require_client_auth), set tls.cert_file and tls.key_file"
                .into(),
        )
    } else if has(&["peer certificate", "tls", "handshake"]) {
        Some(format!(
            "check the [source.tls] settings (mode = \"{}\")",
            tls.mode
        ))
    } else {
        None
    }
}

fn invalid(message: String) -> ConnectorError {
    ConnectorError::Config {
        section: "source.tls",
        message,
    }
}

fn read(path: &Path, field: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| invalid(format!("cannot read {field} {}: {e}", path.display())))
}

fn certificates(path: &Path, field: &str) -> Result<Vec<CertificateDer<'static>>> {
    let pem = read(path, field)?;
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

fn root_store(ca_file: &Path) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(ca_file, "ca_file")? {
        roots.add(cert).map_err(|e| {
            invalid(format!(
                "ca_file {}: not a usable CA certificate: {e}",
                ca_file.display()
            ))
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn testdata(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/tls")
            .join(name)
    }

    fn tls(mode: TlsMode, ca: Option<&str>, cert_key: Option<(&str, &str)>) -> CassandraTlsConfig {
        CassandraTlsConfig {
            mode,
            ca_file: ca.map(testdata),
            cert_file: cert_key.map(|(c, _)| testdata(c)),
            key_file: cert_key.map(|(_, k)| testdata(k)),
        }
    }

    fn error(config: &CassandraTlsConfig) -> String {
        match client_config(config) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("expected an error for {config:?}"),
        }
    }

    #[test]
    fn builds_a_config_for_every_mode() {
        assert!(
            client_config(&CassandraTlsConfig::default())
                .expect("disable")
                .is_none()
        );
        for config in [
            tls(TlsMode::Require, None, None),
            tls(TlsMode::VerifyCa, Some("ca.pem"), None),
            tls(TlsMode::VerifyFull, Some("ca.pem"), None),
            tls(
                TlsMode::VerifyFull,
                Some("ca.pem"),
                Some(("client.pem", "client.key")),
            ),
        ] {
            let built = client_config(&config).expect("valid").expect("TLS on");
            assert_eq!(
                built.client_auth_cert_resolver.has_certs(),
                config.cert_file.is_some(),
                "{config:?}"
            );
        }
    }

    #[test]
    fn a_missing_ca_file_is_named() {
        let e = error(&tls(TlsMode::VerifyCa, Some("no-such-ca.pem"), None));
        assert!(e.contains("source.tls"), "{e}");
        assert!(e.contains("cannot read ca_file"), "{e}");
        assert!(e.contains("no-such-ca.pem"), "{e}");
    }

    #[test]
    fn a_ca_file_without_certificates_is_named() {
        // A private key is PEM, but not a certificate.
        let e = error(&tls(TlsMode::VerifyFull, Some("other.key"), None));
        assert!(e.contains("ca_file"), "{e}");
        assert!(e.contains("no PEM certificate"), "{e}");
    }

    #[test]
    fn an_unreadable_or_wrong_key_is_named() {
        let e = error(&tls(
            TlsMode::Require,
            None,
            Some(("client.pem", "no-such.key")),
        ));
        assert!(
            e.contains("cannot read key_file") && e.contains("no-such.key"),
            "{e}"
        );
        let e = error(&tls(TlsMode::Require, None, Some(("client.pem", "ca.pem"))));
        assert!(
            e.contains("key_file") && e.contains("no PEM private key"),
            "{e}"
        );
        let e = error(&tls(
            TlsMode::Require,
            None,
            Some(("client.pem", "other.key")),
        ));
        assert!(
            e.contains("do not make a usable client identity") && e.contains("other.key"),
            "{e}"
        );
    }

    #[test]
    fn handshake_failures_get_a_hint() {
        let config = tls(TlsMode::VerifyFull, Some("ca.pem"), None);
        let hint = |m: &str| handshake_hint(&config, m).unwrap_or_default();
        assert!(
            hint("invalid peer certificate: UnknownIssuer").contains("not signed by the CA"),
            "{}",
            hint("UnknownIssuer")
        );
        assert!(hint("invalid peer certificate: UnknownIssuer").contains("ca.pem"));
        assert!(hint("NotValidForNameContext { .. }").contains("verify-ca"));
        assert!(
            hint("invalid peer certificate: certificate not valid for name \"127.0.0.4\"")
                .contains("does not name the address")
        );
        assert!(hint("certificate expired: verification time 1 (UNIX)").contains("expired"));
        assert!(
            hint("Request: OPTIONS, reason: Connection broken, reason: Failed to send/receive")
                .contains("set tls.cert_file and tls.key_file")
        );
        assert!(
            hint("received corrupt message of type InvalidContentType")
                .contains("did not answer TLS")
        );
        assert_eq!(
            handshake_hint(&config, "Connection refused (os error 111)"),
            None
        );
    }
}
