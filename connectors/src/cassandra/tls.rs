//! TLS toward Cassandra: the shared [`crate::tls`] configuration for `[source.tls]`, and the
//! hints that turn a failed handshake into something a user can act on.
//!
//! The driver hands rustls the node's IP address as the server name, so `verify-full` checks
//! the certificate's IP SANs; `verify-ca` checks the chain and ignores the names.

use std::sync::Arc;

use rustls::ClientConfig;

use super::config::CassandraTlsConfig;
use crate::error::Result;
use crate::tls::{HandshakeFailure, classify_handshake};

/// The rustls configuration for `tls`, or `None` for `mode = "disable"`.
pub fn client_config(tls: &CassandraTlsConfig) -> Result<Option<Arc<ClientConfig>>> {
    crate::tls::client_config(tls, "source.tls", "the Cassandra nodes")
}

/// What to tell the user when connecting with TLS failed with `message`, if it looks like TLS
/// was the reason.
pub fn handshake_hint(tls: &CassandraTlsConfig, message: &str) -> Option<String> {
    let ca = tls
        .ca_file
        .as_deref()
        .map_or_else(String::new, |p| p.display().to_string());
    let failure = classify_handshake(message);
    Some(match failure {
        Some(HandshakeFailure::UnknownIssuer) => format!(
            "the node's certificate is not signed by the CA in tls.ca_file {ca}; point ca_file at \
             the CA that signed the Cassandra nodes' certificates"
        ),
        Some(HandshakeFailure::NameMismatch) => {
            "the node's certificate does not name the address Ferry connected to (verify-full \
             checks the node's IP against the certificate's IP SANs); reissue the certificate with \
             that IP, or use mode = \"verify-ca\""
                .into()
        }
        Some(HandshakeFailure::Expired) => {
            "the node's certificate is expired or not yet valid; check it and the clock".into()
        }
        Some(HandshakeFailure::NotTls) => {
            "the node did not answer TLS: enable client_encryption_options in its cassandra.yaml, \
             or use tls.mode = \"disable\""
                .into()
        }
        Some(HandshakeFailure::Refused) => {
            "the node refused the TLS handshake; if it requires client certificates \
             (require_client_auth), set tls.cert_file and tls.key_file"
                .into()
        }
        // With TLS 1.3 the server checks the client's certificate after the client thinks the
        // handshake is done: its alert can lose the race with the connection being closed.
        _ if message.to_ascii_lowercase().contains("connection broken")
            && tls.cert_file.is_none() =>
        {
            "the node closed the connection right after the TLS handshake; if it requires client \
             certificates (require_client_auth), set tls.cert_file and tls.key_file"
                .into()
        }
        Some(HandshakeFailure::Other) => {
            format!("check the [source.tls] settings (mode = \"{}\")", tls.mode)
        }
        None => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::tls::TlsMode;

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
