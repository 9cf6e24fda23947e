//! The system's nginx, run in a private folder: found, versioned, started in its
//! own process group (so Ctrl-C in the terminal reaches only us, and we stop it),
//! on listening sockets the run binds and holds, and stopped for sure.

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub(crate) const INSTALL_HINT: &str = "install it with `sudo apt-get install nginx-light` (Debian/Ubuntu), \
     `sudo dnf install nginx` (Fedora) or `brew install nginx` (macOS), or point MTLS_E2E_NGINX at an nginx binary";

/// An nginx binary and its version.
#[derive(Debug, Clone)]
pub struct NginxBinary {
    pub path: PathBuf,
    pub version: (u32, u32, u32),
}

/// Find an executable: `$env_var`, then PATH, then the usual sbin folders.
pub fn find_program(name: &str, env_var: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env_var).map(PathBuf::from) {
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let sbin = [
        "/usr/sbin",
        "/usr/local/sbin",
        "/sbin",
        "/usr/local/nginx/sbin",
        "/opt/homebrew/bin",
    ];
    std::env::split_paths(&path)
        .chain(sbin.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

impl NginxBinary {
    pub(crate) fn find() -> Result<NginxBinary, String> {
        if let Some(set) =
            std::env::var_os("MTLS_E2E_NGINX").filter(|v| !PathBuf::from(v).is_file())
        {
            return Err(format!(
                "MTLS_E2E_NGINX is set to {}, which is not an nginx binary; {INSTALL_HINT}",
                set.to_string_lossy()
            ));
        }
        let path = find_program("nginx", "MTLS_E2E_NGINX").ok_or_else(|| {
            format!("nginx was not found on PATH or in /usr/sbin; {INSTALL_HINT}")
        })?;
        // Its own process group: a Ctrl-C in the terminal reaches only us.
        let output = std::process::Command::new(&path)
            .arg("-v")
            .process_group(0)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
        let text = String::from_utf8_lossy(&output.stderr);
        let version = parse_version(&text)
            .ok_or_else(|| format!("{} -v printed `{}`", path.display(), text.trim()))?;
        Ok(NginxBinary { path, version })
    }

    pub(crate) fn version_text(&self) -> String {
        let (a, b, c) = self.version;
        format!("{a}.{b}.{c}")
    }
}

pub(crate) fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let v = text.split("nginx/").nth(1)?.split_whitespace().next()?;
    let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
    Some((
        parts.next()??,
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
    ))
}

/// A running nginx.
pub struct NginxProcess {
    child: Option<tokio::process::Child>,
    pid: i32,
    pub error_log: PathBuf,
}

impl NginxProcess {
    /// Start nginx with `conf` on `listeners`, sockets this run bound and keeps
    /// (passed to nginx as inherited sockets, the way nginx hands its listeners
    /// to a new binary), and wait until nginx has loaded the configuration: its
    /// pid file names the process we started. Nobody else can listen on those
    /// addresses while the run holds them, so no other process can ever answer
    /// a probe sent there; and a configuration that names any other address
    /// makes nginx fail to bind instead of silently serving elsewhere.
    pub(crate) async fn start(
        binary: &NginxBinary,
        prefix: &Path,
        conf: &Path,
        error_log: &Path,
        pid_file: &Path,
        listeners: &[&std::net::TcpListener],
        deadline: Duration,
    ) -> Result<NginxProcess, String> {
        let fds: Vec<i32> = listeners.iter().map(|l| l.as_raw_fd()).collect();
        let inherited: String = fds.iter().map(|fd| format!("{fd};")).collect();
        let mut command = tokio::process::Command::new(&binary.path);
        command
            .arg("-p")
            .arg(prefix)
            .arg("-c")
            .arg(conf)
            .arg("-e")
            .arg(error_log)
            .env("NGINX", inherited)
            // Relative paths in the configuration (the unix sockets) are
            // relative to the prefix.
            .current_dir(prefix)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        crate::sys::inherit_fds(&mut command, fds);
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.path.display()))?;
        let pid = child.id().map_or(0, u32::cast_signed);
        let mut process = NginxProcess {
            child: Some(child),
            pid,
            error_log: error_log.to_path_buf(),
        };
        let started = Instant::now();
        loop {
            if pid > 0 && read_pid(pid_file) == Some(pid) {
                tracing::debug!(pid, elapsed = ?started.elapsed(), "nginx is up (its pid file names it)");
                return Ok(process);
            }
            if let Some(status) = process
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                let stderr = match process.child.take() {
                    Some(c) => c
                        .wait_with_output()
                        .await
                        .map(|o| String::from_utf8_lossy(&o.stderr).to_string())
                        .unwrap_or_default(),
                    None => String::new(),
                };
                let log = tail(&process.error_log, 5);
                return Err(format!(
                    "nginx exited ({status}): {}{}",
                    stderr.trim(),
                    if log.is_empty() {
                        String::new()
                    } else {
                        format!("\n{log}")
                    }
                ));
            }
            if started.elapsed() > deadline {
                process.stop().await;
                return Err(format!(
                    "nginx did not write its pid file {} within {deadline:?}",
                    pid_file.display()
                ));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Fast shutdown (SIGTERM), then SIGKILL to the whole group after a deadline.
    pub(crate) async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        signal_group(self.pid, libc::SIGTERM);
        if tokio::time::timeout(Duration::from_secs(3), child.wait())
            .await
            .is_err()
        {
            signal_group(self.pid, libc::SIGKILL);
            let _ = child.wait().await;
        }
        // Workers are in the same group; make sure none outlive the master.
        signal_group(self.pid, libc::SIGKILL);
    }
}

impl Drop for NginxProcess {
    fn drop(&mut self) {
        if self.child.take().is_some() {
            signal_group(self.pid, libc::SIGKILL);
        }
    }
}

/// Signal nginx's process group (its master is the leader).
pub(crate) fn signal_group(pid: i32, signal: i32) {
    crate::sys::signal_group(pid, signal);
}

/// The pid in an nginx pid file, once nginx has written it.
fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The last `n` lines of a log file.
pub(crate) fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal nginx folder whose one server listens on `listen` and answers `ours`.
    fn folder(listen: std::net::SocketAddr) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for sub in ["logs", "run"] {
            std::fs::create_dir(dir.path().join(sub)).expect("mkdir");
        }
        let conf = format!(
            "daemon off; worker_processes 1; pid {}/run/nginx.pid; error_log {}/logs/error.log info;\n\
             events {{}}\nhttp {{ access_log off; server {{ listen {listen}; return 200 ours; }} }}\n",
            dir.path().display(),
            dir.path().display()
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).expect("conf");
        dir
    }

    async fn start_in(
        dir: &Path,
        listeners: &[&std::net::TcpListener],
    ) -> Result<NginxProcess, String> {
        let binary = NginxBinary::find().expect("nginx is installed (scripts/install-deps)");
        NginxProcess::start(
            &binary,
            dir,
            &dir.join("nginx.conf"),
            &dir.join("logs/error.log"),
            &dir.join("run/nginx.pid"),
            listeners,
            Duration::from_secs(20),
        )
        .await
    }

    #[tokio::test]
    async fn nginx_serves_on_the_sockets_the_run_holds() {
        let held = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind");
        let addr = held.local_addr().expect("addr");
        let dir = folder(addr);
        let mut nginx = start_in(dir.path(), &[&held]).await.expect("nginx starts");
        // Nobody else can take the address while the run holds it.
        assert!(std::net::TcpListener::bind(addr).is_err());
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream
            .write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.expect("read");
        assert!(answer.ends_with("ours"), "{answer}");
        nginx.stop().await;
    }

    /// The old readiness test (the port accepts a connection) took a squatter
    /// for our nginx: a configuration naming an address someone else listens
    /// on must make the start fail, never look ready.
    #[tokio::test]
    async fn a_squatted_address_never_looks_ready() {
        let squatter = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind");
        let held = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind");
        let dir = folder(squatter.local_addr().expect("addr"));
        let started = start_in(dir.path(), &[&held]).await;
        let error = started.err().expect("nginx must not be taken as started");
        assert!(error.contains("Address already in use"), "{error}");
    }

    #[test]
    fn versions() {
        assert_eq!(
            parse_version("nginx version: nginx/1.22.1\n"),
            Some((1, 22, 1))
        );
        assert_eq!(
            parse_version("nginx version: nginx/1.31.3 (Ubuntu)"),
            Some((1, 31, 3))
        );
        assert_eq!(parse_version("garbage"), None);
    }
}
