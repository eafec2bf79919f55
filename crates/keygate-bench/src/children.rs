//! The servers under test as child processes, each optionally pinned to a
//! CPU with `taskset -c` (which execs the server, so the child's pid is the
//! server's own, as /proc measurements need). A server is ready when it
//! logs `listening on http://…`; it is killed when its handle drops.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use super::BenchError;

/// How long a server may take to log its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A server to start: program, arguments, the whole environment (nothing
/// is inherited but PATH), working directory and CPU.
#[derive(Clone)]
pub struct Launch {
    pub name: &'static str,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub dir: Option<PathBuf>,
    pub cpu: Option<usize>,
}

/// A running server; killed on drop.
pub struct Server {
    pub name: &'static str,
    pub url: String,
    pub pid: u32,
    child: Child,
}

impl Server {
    pub fn start(launch: Launch) -> Result<Self, BenchError> {
        let mut command = match launch.cpu {
            Some(cpu) => {
                let mut taskset = Command::new("taskset");
                taskset.arg("-c").arg(cpu.to_string()).arg(&launch.program);
                taskset
            }
            None => Command::new(&launch.program),
        };
        command
            .args(&launch.args)
            .env_clear()
            .envs(std::env::var_os("PATH").map(|path| ("PATH", path)))
            .envs(&launch.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(dir) = &launch.dir {
            command.current_dir(dir);
        }
        let mut child = command.spawn().map_err(|source| BenchError::Spawn {
            name: launch.name,
            source,
        })?;
        let (ready_tx, ready_rx) = mpsc::channel();
        if let Some(out) = child.stdout.take() {
            watch(launch.name, out, ready_tx.clone());
        }
        if let Some(err) = child.stderr.take() {
            watch(launch.name, err, ready_tx);
        }
        let pid = child.id();
        let mut server = Self {
            name: launch.name,
            url: String::new(),
            pid,
            child,
        };
        server.url = ready_rx
            .recv_timeout(READY_TIMEOUT)
            .map_err(|_| BenchError::NotReady(launch.name))?;
        Ok(server)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `output` line by line on a thread until the child exits: sends
/// the URL of the ready line, echoes every other line to stderr (with
/// RUST_LOG=warn only warnings and errors, which a reader should see).
fn watch(name: &'static str, output: impl Read + Send + 'static, ready: mpsc::Sender<String>) {
    thread::spawn(move || {
        for line in BufReader::new(output).lines() {
            let Ok(line) = line else { break };
            match listen_url(&line) {
                Some(url) => {
                    let _ = ready.send(url);
                }
                None => eprintln!("[{name}] {line}"),
            }
        }
    });
}

/// The URL of a `… listening on http://HOST:PORT` log line.
fn listen_url(line: &str) -> Option<String> {
    let (_, rest) = line.split_once("listening on ")?;
    let url: String = rest
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '\u{1b}')
        .collect();
    url.starts_with("http://").then_some(url)
}

#[cfg(test)]
mod tests {
    use super::listen_url;

    #[test]
    fn the_ready_url_is_read_from_plain_and_coloured_log_lines() {
        assert_eq!(
            listen_url("fake upstream listening on http://127.0.0.1:4321").as_deref(),
            Some("http://127.0.0.1:4321")
        );
        assert_eq!(
            listen_url(
                "2026 \u{1b}[32m INFO\u{1b}[0m keygate listening on http://127.0.0.1:99\u{1b}[0m"
            )
            .as_deref(),
            Some("http://127.0.0.1:99")
        );
        assert_eq!(listen_url("listening on port 3"), None);
        assert_eq!(listen_url("INFO started"), None);
    }
}
