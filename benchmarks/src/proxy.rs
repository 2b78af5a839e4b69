//! A TCP proxy on loopback that delays every chunk by a fixed time in each direction: the
//! latency scenario's stand-in for `tc netem` on machines whose kernel has no `sch_netem`.
//!
//! Each direction of each connection is a reader and a writer joined by a queue:
//!
//! ```text
//! client ──read──▶ [ (due = t+d, bytes) … ] ──sleep until due, write──▶ server
//! client ◀──write, after sleeping until due── [ … ] ◀──read── server
//! ```
//!
//! The reader stamps every chunk with the instant it may leave (when it was read, plus the
//! delay) and goes on reading; the writer waits for each chunk's instant and writes it. So every
//! byte arrives `delay` later than it would have, in order, while the throughput is not capped by
//! the delay (no sleep-then-forward per chunk) nor by a bandwidth limit. What may be queued per
//! direction is bounded by [`MAX_QUEUED`], the proxy's window: beyond it, the reader waits.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// Bytes one read takes at most.
const CHUNK: usize = 64 * 1024;

/// How early a chunk's wait may end. Tokio's timer fires on the millisecond tick after a
/// deadline (1–2 ms late: 22.5 ms round trips measured for 2 × 10 ms); waking on the tick before
/// it instead lands within half a millisecond of it (20.7 ms measured). Chunks due sooner than this are
/// written without waiting, so a proxy without delay adds no timer tick to every write.
const TIMER_SLACK: Duration = Duration::from_millis(1);

/// Bytes queued per direction of a connection at most: far above any bandwidth-delay product
/// this machine reaches at 10 ms one way, so it never caps the throughput, but bounded.
pub const MAX_QUEUED: usize = 64 * 1024 * 1024;

/// A running proxy; dropping it closes the listener and every connection it relays.
#[derive(Debug)]
pub struct DelayProxy {
    addr: SocketAddr,
    one_way: Duration,
    accept: JoinHandle<()>,
}

impl DelayProxy {
    /// Listens on `127.0.0.1` (a free port) and relays every connection to `upstream`, each
    /// chunk delayed by `one_way` in each direction (so the round trip grows by twice that).
    pub async fn start(upstream: SocketAddr, one_way: Duration) -> io::Result<Self> {
        Self::start_on(0, upstream, one_way).await
    }

    /// [`DelayProxy::start`] on `127.0.0.1:port`.
    pub async fn start_on(port: u16, upstream: SocketAddr, one_way: Duration) -> io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let accept = tokio::spawn(accept_loop(listener, upstream, one_way));
        Ok(Self {
            addr,
            one_way,
            accept,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The delay added in each direction.
    pub fn one_way(&self) -> Duration {
        self.one_way
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        // The accept task owns the connections' JoinSet, which aborts them as it drops.
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, one_way: Duration) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    connections.spawn(relay(client, upstream, one_way));
                }
                Err(e) => {
                    // Out of file descriptors and the like: the client sees its connect fail.
                    eprintln!("delay proxy: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            // Reap finished connections, so the set does not grow over a long run.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Relays one connection until both directions end; an error in either ends both.
async fn relay(client: TcpStream, upstream: SocketAddr, one_way: Duration) {
    let server = match TcpStream::connect(upstream).await {
        Ok(s) => s,
        // Dropping the client's socket closes it: the client sees the connection end.
        Err(e) => {
            eprintln!("delay proxy: cannot connect to {upstream}: {e}");
            return;
        }
    };
    // PostgreSQL's messages are small and latency-bound: no Nagle on either leg.
    if client.set_nodelay(true).is_err() || server.set_nodelay(true).is_err() {
        return;
    }
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    // A reset or error on either side drops both directions, closing both sockets.
    let _ = tokio::try_join!(
        pump(client_read, server_write, one_way),
        pump(server_read, client_write, one_way)
    );
}

/// One chunk on its way: `None` is the end of the stream, passed on as a write shutdown.
struct Chunk {
    due: Instant,
    data: Option<Bytes>,
    _queued: Option<OwnedSemaphorePermit>,
}

/// One direction: reads chunks from `from` and writes each to `to` `delay` after it was read.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Duration) -> io::Result<()> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Chunk>();
    let budget = Arc::new(Semaphore::new(MAX_QUEUED));
    let read = async move {
        loop {
            let mut buf = BytesMut::with_capacity(CHUNK);
            let n = from.read_buf(&mut buf).await?;
            let due = Instant::now() + delay;
            if n == 0 {
                let _ = tx.send(Chunk {
                    due,
                    data: None,
                    _queued: None,
                });
                return Ok::<_, io::Error>(());
            }
            let permit = Arc::clone(&budget)
                .acquire_many_owned(n as u32)
                .await
                .map_err(|_| io::Error::other("the proxy's queue budget was closed"))?;
            let chunk = Chunk {
                due,
                data: Some(buf.freeze()),
                _queued: Some(permit),
            };
            if tx.send(chunk).is_err() {
                // The writer has ended with an error, which try_join reports.
                return Ok(());
            }
        }
    };
    let write = async move {
        while let Some(chunk) = rx.recv().await {
            if chunk.due > Instant::now() + TIMER_SLACK {
                tokio::time::sleep_until(chunk.due - TIMER_SLACK).await;
            }
            match chunk.data {
                Some(data) => to.write_all(&data).await?,
                None => {
                    to.shutdown().await?;
                    break;
                }
            }
        }
        Ok::<_, io::Error>(())
    };
    tokio::try_join!(read, write).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on loopback: writes back whatever it reads, until EOF.
    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                    let _ = w.shutdown().await;
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_round_trip_takes_twice_the_delay_and_bytes_keep_their_order() {
        let upstream = echo_server().await;
        let proxy = DelayProxy::start(upstream, Duration::from_millis(25))
            .await
            .expect("proxy");
        let mut s = TcpStream::connect(proxy.addr()).await.expect("connect");
        s.set_nodelay(true).expect("nodelay");
        let mut got = vec![0u8; 5];
        for round in 0..3u8 {
            let sent = [round, 1, 2, 3, 4];
            let started = std::time::Instant::now();
            s.write_all(&sent).await.expect("write");
            s.read_exact(&mut got).await.expect("read");
            let rtt = started.elapsed();
            assert_eq!(got, sent);
            // Each way may end up to TIMER_SLACK early.
            assert!(rtt >= Duration::from_millis(48), "round trip {rtt:?}");
            assert!(rtt < Duration::from_millis(250), "round trip {rtt:?}");
        }
    }

    #[tokio::test]
    async fn the_delay_does_not_cap_the_throughput() {
        // 64 MiB through 2 × 50 ms: sleeping 50 ms per 64 KiB chunk would take over a minute;
        // a pipe that only delays takes the transfer time plus ~100 ms.
        let upstream = echo_server().await;
        let proxy = DelayProxy::start(upstream, Duration::from_millis(50))
            .await
            .expect("proxy");
        let s = TcpStream::connect(proxy.addr()).await.expect("connect");
        let (mut r, mut w) = s.into_split();
        let total = 64 * 1024 * 1024usize;
        let started = std::time::Instant::now();
        let writer = tokio::spawn(async move {
            let block: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
            for _ in 0..total / block.len() {
                w.write_all(&block).await.expect("write");
            }
            w.shutdown().await.expect("shutdown");
        });
        let mut received = Vec::with_capacity(total);
        r.read_to_end(&mut received).await.expect("read");
        writer.await.expect("writer");
        let elapsed = started.elapsed();
        assert_eq!(received.len(), total);
        assert!(
            received
                .iter()
                .enumerate()
                .all(|(i, &b)| b == ((i % (1024 * 1024)) % 251) as u8),
            "bytes out of order"
        );
        assert!(elapsed >= Duration::from_millis(100), "took {elapsed:?}");
        assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
    }

    #[tokio::test]
    async fn an_unreachable_upstream_closes_the_client() {
        // A port nothing listens on: bind one, note it, free it.
        let free = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind")
            .local_addr()
            .expect("addr");
        let proxy = DelayProxy::start(free, Duration::from_millis(1))
            .await
            .expect("proxy");
        let mut s = TcpStream::connect(proxy.addr()).await.expect("connect");
        let mut buf = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("closed in time")
            .unwrap_or(0);
        assert_eq!(n, 0);
    }
}
