//! TLS toward PostgreSQL/YugabyteDB: tokio-postgres's `TlsConnect` over tokio-rustls, with the
//! rustls configuration of [`crate::tls`], and hints for failed handshakes.
//!
//! The server name rustls checks under `verify-full` is the host Ferry connected to, as
//! written in the URL or returned by `yb_servers()` (a DNS name or an IP address).
//! Channel binding (SCRAM-SHA-256-PLUS) is not offered: password authentication uses plain
//! SCRAM-SHA-256, inside the verified TLS session.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, TlsConnect, TlsStream};

use crate::tls::{HandshakeFailure, TlsConfig, classify_handshake};

/// Wraps one connection to `server` in TLS. Unused (and never called by the driver) when
/// the driver's `sslmode` is `disable`.
#[derive(Clone)]
pub struct PgTls {
    config: Option<Arc<ClientConfig>>,
    server: String,
}

impl PgTls {
    /// A connector for `server` (a DNS name or an IP address).
    pub fn new(config: Option<Arc<ClientConfig>>, server: &str) -> Self {
        Self {
            config,
            server: server.to_string(),
        }
    }
}

impl<S> TlsConnect<S> for PgTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = PgTlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<PgTlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let config = self.config.ok_or_else(|| {
                io::Error::other("TLS was requested but [target.tls] mode is \"disable\"")
            })?;
            let name = ServerName::try_from(self.server.clone()).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{:?} is not a valid TLS server name: {e}", self.server),
                )
            })?;
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, stream)
                .await?;
            Ok(PgTlsStream(Box::new(stream)))
        })
    }
}

/// A TLS session to the target.
pub struct PgTlsStream<S>(Box<tokio_rustls::client::TlsStream<S>>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for PgTlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for PgTlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for PgTlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

/// What to tell the user when connecting to `server` with TLS failed with `message`, if TLS
/// looks like the reason.
pub fn handshake_hint(tls: &TlsConfig, server: &str, message: &str) -> Option<String> {
    let ca = tls
        .ca_file
        .as_deref()
        .map_or_else(String::new, |p| p.display().to_string());
    Some(match classify_handshake(message)? {
        HandshakeFailure::UnknownIssuer => format!(
            "the certificate of {server} is not signed by the CA in tls.ca_file {ca}; point \
             ca_file at the CA that signed the target servers' certificates"
        ),
        HandshakeFailure::NameMismatch => format!(
            "the certificate of {server} does not name that host (verify-full checks the host \
             Ferry connects to against the certificate's DNS and IP SANs); use the name the \
             certificate was issued for, reissue it, or use mode = \"verify-ca\""
        ),
        HandshakeFailure::Expired => format!(
            "the certificate of {server} is expired or not yet valid; check it and the clock"
        ),
        HandshakeFailure::NotTls => format!(
            "{server} does not accept TLS connections: set ssl = on on the server, or \
             tls.mode = \"disable\""
        ),
        HandshakeFailure::Refused => format!(
            "{server} refused the TLS handshake; if it requires client certificates, set \
             tls.cert_file and tls.key_file"
        ),
        HandshakeFailure::Other => {
            format!("check the [target.tls] settings (mode = \"{}\")", tls.mode)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::TlsMode;

    #[test]
    fn handshake_failures_name_the_server_and_the_file() {
        let tls = TlsConfig {
            mode: TlsMode::VerifyFull,
            ca_file: Some("/etc/ferry/ca.pem".into()),
            ..Default::default()
        };
        let hint = |m: &str| handshake_hint(&tls, "db1:5433", m).unwrap_or_default();
        let h = hint("error performing TLS handshake: invalid peer certificate: UnknownIssuer");
        assert!(
            h.contains("db1:5433") && h.contains("/etc/ferry/ca.pem"),
            "{h}"
        );
        assert!(hint("invalid peer certificate: NotValidForName").contains("verify-ca"));
        assert!(
            hint("error performing TLS handshake: server does not support TLS")
                .contains("does not accept TLS")
        );
        assert_eq!(handshake_hint(&tls, "db1:5433", "Connection refused"), None);
    }
}
