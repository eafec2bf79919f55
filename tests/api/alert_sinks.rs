//! Where test alerts go: a webhook receiver (axum on port 0, recording
//! every body), an SMTP sink (a minimal SMTP server on loopback, no TLS,
//! recording every message), a webhook that accepts connections and never
//! answers, and an address nothing listens on.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// How long a test waits for an expected message.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// The path part of test webhook URLs: a webhook URL is a secret, and tests
/// check this never shows.
pub const WEBHOOK_TOKEN: &str = "T0KEN-hooks-9f8e7d6c5b4a";

/// Polls `read` until `done` holds for what it returns, or panics at the
/// deadline with what was seen.
pub async fn wait_until<T: std::fmt::Debug>(
    what: &str,
    read: impl Fn() -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let seen = read();
        if done(&seen) {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; seen {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------- webhooks

/// Records the JSON body of every POST, on any path.
#[derive(Clone)]
pub struct WebhookReceiver {
    pub url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl WebhookReceiver {
    pub async fn start() -> Self {
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route("/{*path}", post(record))
            .with_state(bodies.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/services/{WEBHOOK_TOKEN}",
            listener.local_addr().unwrap()
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, bodies }
    }

    pub fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }

    /// Bodies of the JSON format whose `event` is `event`.
    pub fn events(&self, event: &str) -> Vec<Value> {
        self.bodies()
            .into_iter()
            .filter(|b| b["event"] == event)
            .collect()
    }

    /// Slack-format texts containing `needle`.
    pub fn texts_with(&self, needle: &str) -> Vec<String> {
        self.bodies()
            .iter()
            .filter_map(|b| b["text"].as_str())
            .filter(|text| text.contains(needle))
            .map(String::from)
            .collect()
    }
}

async fn record(State(bodies): State<Arc<Mutex<Vec<Value>>>>, body: Bytes) {
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    bodies.lock().unwrap().push(value);
}

/// A webhook that accepts connections and never answers.
pub struct SilentWebhook {
    pub url: String,
    connections: Arc<AtomicUsize>,
}

impl SilentWebhook {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/services/{WEBHOOK_TOKEN}",
            listener.local_addr().unwrap()
        );
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                held.push(socket);
            }
        });
        Self { url, connections }
    }

    /// Connections accepted so far: one per delivery attempt.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// An http URL on a loopback port nothing listens on.
pub async fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}/services/{WEBHOOK_TOKEN}")
}

// ---------------------------------------------------------------- SMTP

/// One message the sink accepted.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// Headers and body as sent (dot-stuffing undone).
    pub data: String,
}

impl Mail {
    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.data
            .split("\r\n\r\n")
            .next()?
            .split("\r\n")
            .find(|line| line.to_ascii_lowercase().starts_with(&prefix))
            .map(|line| line[prefix.len()..].trim().to_string())
    }

    /// The body, quoted-printable decoded when it says so.
    pub fn body(&self) -> String {
        let body = self
            .data
            .split_once("\r\n\r\n")
            .map(|(_, body)| body)
            .unwrap_or_default();
        match self.header("Content-Transfer-Encoding").as_deref() {
            Some("quoted-printable") => decode_quoted_printable(body),
            Some("7bit") | Some("8bit") | None => body.to_string(),
            Some(other) => panic!("unexpected encoding {other}"),
        }
    }
}

fn decode_quoted_printable(text: &str) -> String {
    let text = text.replace("=\r\n", "");
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && let Some(byte) = bytes
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok())
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// A minimal SMTP server: EHLO/HELO, AUTH (accepts anything), MAIL, RCPT,
/// DATA, RSET, NOOP, QUIT. No TLS (it offers no STARTTLS).
#[derive(Clone)]
pub struct SmtpSink {
    pub port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
    /// Every line clients sent, AUTH included (to prove credentials went
    /// where they belong).
    lines: Arc<Mutex<Vec<String>>>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let sink = Self {
            port,
            mails: Arc::default(),
            lines: Arc::default(),
        };
        let serving = sink.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let session = serving.clone();
                tokio::spawn(async move {
                    let _ = session.serve(socket).await;
                });
            }
        });
        sink
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    async fn serve(&self, socket: TcpStream) -> std::io::Result<()> {
        let (read, mut write) = socket.into_split();
        let mut read = BufReader::new(read);
        write.write_all(b"220 sink ESMTP ready\r\n").await?;
        let (mut from, mut to) = (String::new(), Vec::new());
        loop {
            let line = read_line(&mut read).await?;
            self.lines.lock().unwrap().push(line.clone());
            let upper = line.to_ascii_uppercase();
            let reply: &[u8] = if upper.starts_with("EHLO") {
                b"250-sink\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"
            } else if upper.starts_with("HELO") {
                b"250 sink\r\n"
            } else if upper.starts_with("AUTH") {
                if upper.split_whitespace().count() == 2 {
                    // No initial response: ask for it (and for LOGIN's two).
                    let rounds = if upper.contains("LOGIN") { 2 } else { 1 };
                    for _ in 0..rounds {
                        write.write_all(b"334 \r\n").await?;
                        let answer = read_line(&mut read).await?;
                        self.lines.lock().unwrap().push(answer);
                    }
                }
                b"235 2.7.0 authenticated\r\n"
            } else if upper.starts_with("MAIL FROM:") {
                from = line[10..].trim().to_string();
                b"250 ok\r\n"
            } else if upper.starts_with("RCPT TO:") {
                to.push(line[8..].trim().to_string());
                b"250 ok\r\n"
            } else if upper == "DATA" {
                write.write_all(b"354 go ahead\r\n").await?;
                let data = read_data(&mut read).await?;
                self.mails.lock().unwrap().push(Mail {
                    from: std::mem::take(&mut from),
                    to: std::mem::take(&mut to),
                    data,
                });
                b"250 queued\r\n"
            } else if upper == "RSET" || upper == "NOOP" {
                b"250 ok\r\n"
            } else if upper == "QUIT" {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            } else {
                b"502 not implemented\r\n"
            };
            write.write_all(reply).await?;
        }
    }
}

/// One line without its CRLF; an error at end of stream.
async fn read_line(
    read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<String> {
    let mut line = String::new();
    if read.read_line(&mut line).await? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// The message after DATA, up to the lone `.`, with dot-stuffing undone.
async fn read_data(
    read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<String> {
    let mut lines = Vec::new();
    loop {
        let line = read_line(read).await?;
        if line == "." {
            return Ok(lines.join("\r\n"));
        }
        lines.push(line.strip_prefix('.').map(String::from).unwrap_or(line));
    }
}
