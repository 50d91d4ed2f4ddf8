//! Helpers for tests of servers behind the [`crate::guard`] governor: hold slow connections open
//! (from a chosen loopback address), see which the server closed, ask an honest request over plain
//! TCP or TLS. Enabled by the `test-support` feature; not for production code.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Half a request line: what a slowloris client sends before stalling.
pub const HALF_REQUEST_LINE: &[u8] = b"GET /healthz HT";

/// Upper bound on waiting for the server to close a connection (a hang guard, not a measurement).
pub const CLOSE_BOUND: Duration = Duration::from_secs(20);

/// Raises the soft open-file limit to the hard one (tests hold both ends of many connections).
pub fn raise_nofile() {
    let _ = crate::guard::raise_nofile_limit();
}

/// A TCP connection to `to` from the loopback address `from` (any of 127.0.0.0/8 on Linux).
pub async fn connect_from(from: IpAddr, to: SocketAddr) -> io::Result<TcpStream> {
    let socket = match from {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(to).await
}

/// Opens `n` connections to `to` from `from`, one after the other (so that the server accepts them
/// in this order), each sending `prefix` (nothing when empty) and then nothing more.
pub async fn hold(
    to: SocketAddr,
    from: IpAddr,
    n: usize,
    prefix: &[u8],
) -> io::Result<Vec<TcpStream>> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let mut stream = connect_from(from, to).await?;
        if !prefix.is_empty() {
            stream.write_all(prefix).await?;
        }
        held.push(stream);
    }
    Ok(held)
}

/// Whether the server closed `stream` (end of file or a reset) within [`CLOSE_BOUND`] without
/// answering anything.
pub async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 256];
    match tokio::time::timeout(CLOSE_BOUND, stream.read(&mut buf)).await {
        Ok(Ok(0)) => true,
        Ok(Ok(_)) => false,
        Ok(Err(err)) => err.kind() == io::ErrorKind::ConnectionReset,
        Err(_) => false,
    }
}

/// Whether `stream` is still open with nothing to read (the server neither answered nor closed).
pub fn still_open(stream: &TcpStream) -> bool {
    let mut buf = [0u8; 16];
    matches!(stream.try_read(&mut buf), Err(err) if err.kind() == io::ErrorKind::WouldBlock)
}

/// Sends `GET path` with `Connection: close` over `stream` and returns the status and the whole
/// answer.
pub async fn get<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    path: &str,
) -> io::Result<(u16, Vec<u8>)> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let status = answer
        .get(9..12)
        .and_then(|code| std::str::from_utf8(code).ok())
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::other("no HTTP status line"))?;
    Ok((status, answer))
}

/// A self-signed certificate for `localhost` and its PKCS#8 key, both DER.
#[derive(Clone, Debug)]
pub struct SelfSigned {
    /// The certificate.
    pub cert_der: Vec<u8>,
    /// Its private key.
    pub key_der: Vec<u8>,
}

impl SelfSigned {
    /// A fresh certificate and key.
    pub fn generate() -> Result<Self, String> {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .map_err(|e| e.to_string())?;
        Ok(Self {
            cert_der: cert.cert.der().to_vec(),
            key_der: cert.signing_key.serialize_der(),
        })
    }

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    /// A server configuration with this certificate (ring provider, ALPN `http/1.1`).
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, String> {
        let cert = CertificateDer::from(self.cert_der.clone());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        let mut server = rustls::ServerConfig::builder_with_provider(Self::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .map_err(|e| e.to_string())?;
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(server))
    }

    /// A client configuration that trusts only this certificate.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.cert_der.clone()))
            .map_err(|e| e.to_string())?;
        let mut client = rustls::ClientConfig::builder_with_provider(Self::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(client))
    }
}

/// A server configuration with a fresh self-signed certificate for `localhost`, and a client
/// configuration that trusts it.
pub fn self_signed_tls() -> Result<(Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>), String> {
    let pair = SelfSigned::generate()?;
    Ok((pair.server_config()?, pair.client_config()?))
}

/// A TLS connection to `to` for the server name `localhost`.
pub async fn tls_connect(
    to: SocketAddr,
    client: Arc<rustls::ClientConfig>,
) -> io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let stream = TcpStream::connect(to).await?;
    let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
    tokio_rustls::TlsConnector::from(client)
        .connect(name, stream)
        .await
}
