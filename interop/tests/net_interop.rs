//! Protocol crates written for `std::io::{Read, Write}` run unchanged over
//! `spool::net::TcpStream`: a WebSocket session with `tungstenite` and a
//! TLS session with `rustls`, both ends in green threads, over loopback.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use common::Watchdog;
use spool::net::{TcpListener, TcpStream};
use spool::thread;

const LIMIT: Duration = Duration::from_secs(120);

fn listener() -> TcpListener {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).expect("bind a loopback listener")
}

/// `len` bytes that differ with `seed`.
fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i % 251) as u8).wrapping_mul(13).wrapping_add(seed) ^ (i >> 10) as u8)
        .collect()
}

#[test]
fn websocket_round_trip_with_tungstenite() {
    use tungstenite::{Error, Message};

    let _watchdog = Watchdog::new("websocket_round_trip_with_tungstenite", LIMIT);
    spool::run(|| {
        let listener = listener();
        let addr = listener.local_addr().unwrap();
        // Server: echoes every data message until the client closes.
        let server = thread::spawn(move || -> Result<usize, String> {
            let (stream, _) = listener.accept().map_err(|e| e.to_string())?;
            let mut ws = tungstenite::accept(stream).map_err(|e| format!("accept: {e}"))?;
            let mut echoed = 0;
            loop {
                match ws.read() {
                    Ok(message @ (Message::Text(_) | Message::Binary(_))) => {
                        ws.send(message).map_err(|e| format!("send: {e}"))?;
                        echoed += 1;
                    }
                    // tungstenite answers the close frame itself; keep
                    // reading until the closing handshake is done.
                    Ok(_) => {}
                    Err(Error::ConnectionClosed) => return Ok(echoed),
                    Err(e) => return Err(format!("server read: {e}")),
                }
            }
        });

        let stream = TcpStream::connect(addr).unwrap();
        let (mut ws, response) = tungstenite::client(format!("ws://{addr}/echo"), stream)
            .map_err(|e| e.to_string())
            .expect("client handshake");
        assert_eq!(response.status().as_u16(), 101);

        let big = pattern(3, 1 << 20);
        let messages = [
            Message::text("hello over spool"),
            Message::binary(vec![0u8, 1, 2, 255]),
            Message::text("ü".repeat(10_000)),
            Message::binary(big),
        ];
        for message in &messages {
            ws.send(message.clone()).expect("client send");
            let back = ws.read().expect("client read");
            assert!(back == *message, "echo differs");
        }

        ws.close(None).expect("close");
        loop {
            match ws.read() {
                Ok(Message::Close(_)) | Ok(_) => {}
                Err(Error::ConnectionClosed) => break,
                Err(e) => panic!("client read while closing: {e}"),
            }
        }
        assert_eq!(server.join().unwrap().unwrap(), messages.len());
    });
}

/// A server and a client configuration for a self-signed `localhost`
/// certificate made on the spot.
fn tls_configs() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .expect("generate a certificate");
    let cert = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());

    let server = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .expect("server certificate");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).expect("trust the certificate");
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), Arc::new(client))
}

/// Reads a 4-byte length and that many bytes.
fn read_frame(stream: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body)?;
    Ok(body)
}

fn write_frame(stream: &mut impl Write, body: &[u8]) -> io::Result<()> {
    stream.write_all(&(body.len() as u32).to_be_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

#[test]
fn tls_round_trip_with_rustls() {
    let _watchdog = Watchdog::new("tls_round_trip_with_rustls", LIMIT);
    let (server_config, client_config) = tls_configs();
    spool::run(|| {
        let listener = listener();
        let addr = listener.local_addr().unwrap();
        // Server: answers each frame with its bytes reversed, then sees the
        // client's close_notify as a clean end of stream.
        let server = thread::spawn(move || -> io::Result<usize> {
            let (stream, _) = listener.accept()?;
            let connection =
                rustls::ServerConnection::new(server_config).map_err(io::Error::other)?;
            let mut tls = rustls::StreamOwned::new(connection, stream);
            let mut frames = 0;
            loop {
                let mut body = match read_frame(&mut tls) {
                    Ok(body) => body,
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                    Err(e) => return Err(e),
                };
                body.reverse();
                write_frame(&mut tls, &body)?;
                frames += 1;
            }
            // read returns 0 only after the peer's close_notify.
            assert_eq!(tls.read(&mut [0u8; 8])?, 0);
            tls.conn.send_close_notify();
            tls.flush()?;
            Ok(frames)
        });

        let stream = TcpStream::connect(addr).unwrap();
        let connection =
            rustls::ClientConnection::new(client_config, "localhost".try_into().unwrap())
                .expect("client connection");
        let mut tls = rustls::StreamOwned::new(connection, stream);
        let bodies = [
            b"hello over tls".to_vec(),
            pattern(5, 3 << 20),
            vec![0u8; 1],
        ];
        for body in &bodies {
            write_frame(&mut tls, body).expect("client write");
            let mut back = read_frame(&mut tls).expect("client read");
            back.reverse();
            assert!(back == *body, "reply differs");
        }
        assert!(tls.conn.negotiated_cipher_suite().is_some());
        tls.conn.send_close_notify();
        tls.flush().unwrap();
        let mut rest = Vec::new();
        tls.read_to_end(&mut rest).expect("clean close");
        assert!(rest.is_empty());
        assert_eq!(server.join().unwrap().unwrap(), bodies.len());
    });
}
