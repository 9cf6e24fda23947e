//! The real `openssl s_client`, run the way the tutorials run it, and parsed.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use super::{HttpFacts, Identity, Observation, TlsFacts, Trust, alert_in};

pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// The default request: a GET of `/`, closing the connection after the answer.
pub(crate) fn default_send(host: &str) -> String {
    format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
}

/// openssl's arguments for a probe: `s_client -connect ADDR -servername NAME
/// [-cert -key] [-CAfile] -ign_eof` (the probe and `up`'s by-hand line).
pub(crate) fn s_client_args(
    addr: SocketAddr,
    servername: &str,
    identity: Option<&Identity>,
    trust: Option<&Trust>,
) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "s_client".into(),
        "-connect".into(),
        addr.to_string(),
        "-servername".into(),
        servername.into(),
    ];
    if let Some(id) = identity {
        args.extend(["-cert".into(), id.cert_path.display().to_string()]);
        args.extend(["-key".into(), id.key_path.display().to_string()]);
    }
    if let Some(t) = trust {
        args.extend(["-CAfile".into(), t.path.display().to_string()]);
    }
    args.push("-ign_eof".into());
    args
}

/// `openssl s_client ...` (see `s_client_args`), with `send` on stdin; `-ign_eof` keeps reading until the server closes, which
/// is what surfaces a TLS 1.3 refusal.
pub(crate) async fn s_client(
    openssl: &Path,
    addr: SocketAddr,
    servername: &str,
    identity: Option<&Identity>,
    trust: Option<&Trust>,
    send: &str,
) -> Observation {
    let started = Instant::now();
    let args = s_client_args(addr, servername, identity, trust);
    let command = format!("openssl {}", args.join(" "));
    let mut observation = Observation {
        target: format!("openssl s_client {servername} via {addr}"),
        command: Some(command),
        ..Observation::default()
    };
    match tokio::time::timeout(TIMEOUT, run(openssl, &args, send)).await {
        Ok(Ok((code, stdout, stderr))) => parse(&mut observation, code, &stdout, &stderr),
        Ok(Err(e)) => observation.error = Some(e),
        Err(_) => {
            observation.error = Some(format!(
                "openssl s_client did not finish within {TIMEOUT:?}"
            ));
        }
    }
    observation.elapsed_ms = crate::probe::millis(started.elapsed());
    observation
}

async fn run(openssl: &Path, args: &[String], send: &str) -> Result<(i32, String, String), String> {
    let mut child = tokio::process::Command::new(openssl)
        .args(args)
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", openssl.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A refused client may see stdin closed early; that is part of the answer.
        let _ = stdin.write_all(send.as_bytes()).await;
    }
    let output = child.wait_with_output().await.map_err(|e| e.to_string())?;
    Ok((
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).to_string(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    ))
}

/// Read `s_client`'s report into an observation.
pub(crate) fn parse(observation: &mut Observation, code: i32, stdout: &str, stderr: &str) {
    let mut tls = TlsFacts::default();
    let lines: Vec<&str> = stdout.lines().collect();
    let mut depths: Vec<(usize, String)> = Vec::new();
    for line in stderr.lines().chain(stdout.lines()) {
        if let Some(rest) = line.strip_prefix("depth=")
            && let Some((depth, subject)) = rest.split_once(' ')
            && let Ok(d) = depth.parse::<usize>()
        {
            depths.retain(|(seen, _)| *seen != d);
            depths.push((d, subject.trim().to_string()));
        }
    }
    depths.sort();
    tls.verified_chain = depths.into_iter().map(|(_, s)| s).collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line == "Acceptable client certificate CA names" {
            tls.client_cert_requested = true;
            i += 1;
            while i < lines.len() && !is_after_ca_names(lines[i]) {
                tls.acceptable_ca_names.push(lines[i].trim().to_string());
                i += 1;
            }
            continue;
        }
        if line.starts_with("No client certificate CA names sent") {
            tls.client_cert_requested = true;
        }
        if let Some(rest) = line.strip_prefix("New, ") {
            // `New, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384`
            if let Some((protocol, cipher)) = rest.split_once(", Cipher is ") {
                tls.protocol = Some(protocol.trim().to_string());
                tls.cipher = Some(cipher.trim().to_string());
            }
        }
        if let Some(rest) = line.strip_prefix("Verification: ") {
            tls.verification = rest.trim().to_string();
        }
        if let Some(rest) = line.strip_prefix("Verification error: ") {
            tls.verification = rest.trim().to_string();
        }
        if let Some(rest) = line.trim_start().strip_prefix(|c: char| c.is_ascii_digit()) {
            // ` 0 s:CN = ...` in the Certificate chain section.
            if let Some(subject) = rest
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .strip_prefix(" s:")
            {
                tls.peer_chain.push(subject.trim().to_string());
            }
        }
        i += 1;
    }
    let handshake_done = tls.protocol.as_deref().is_some_and(|p| p != "(NONE)");
    observation.alert = alert_in(stderr).or_else(|| alert_in(stdout));
    observation.rejected =
        observation.alert.is_some() || (!handshake_done && stderr.contains("handshake failure"));
    // The answer may start mid-line, right after a session ticket's hex dump.
    let answer = lines
        .iter()
        .enumerate()
        .find_map(|(i, l)| status_line_at(l).map(|at| (i, at)));
    if let Some((start, at)) = answer {
        let first = &lines[start][at..];
        let status = first
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut body = vec![first];
        body.extend(&lines[start + 1..]);
        observation.response = Some(HttpFacts {
            status,
            headers: std::collections::BTreeMap::default(),
            body: body.join("\n"),
        });
    }
    if handshake_done || !tls.peer_chain.is_empty() {
        observation.tls = Some(tls);
    }
    if observation.response.is_none() && observation.alert.is_none() {
        observation.connection = connection_failure(stderr);
    }
    if code != 0 && !observation.rejected {
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        observation.error = Some(format!("openssl exited with {code}: {last}"));
    }
    observation.transcript = Some(transcript(stdout, stderr));
}

/// A connection-level failure in openssl's words (it is another program: its
/// errno and OpenSSL's reason strings are all there is).
fn connection_failure(stderr: &str) -> Option<crate::net::ConnectionFailure> {
    use crate::net::ConnectionFailure::{Dropped, Refused};
    if stderr.contains("errno=111") || stderr.contains("Connection refused") {
        Some(Refused)
    } else if [
        "errno=104",
        "errno=32",
        "Connection reset by peer",
        "unexpected eof while reading",
    ]
    .iter()
    .any(|m| stderr.contains(m))
    {
        Some(Dropped)
    } else {
        None
    }
}

/// Where an `HTTP/1.x NNN` status line starts in `line`.
fn status_line_at(line: &str) -> Option<usize> {
    line.match_indices("HTTP/1.").map(|(i, _)| i).find(|&i| {
        // Bytes, not string slices: what a server printed need not split on
        // character boundaries where a status line would.
        let rest = &line.as_bytes()[i..];
        rest.get(8) == Some(&b' ')
            && rest
                .get(9..12)
                .is_some_and(|code| code.iter().all(u8::is_ascii_digit))
    })
}

fn is_after_ca_names(line: &str) -> bool {
    line.starts_with("Requested Signature Algorithms")
        || line.starts_with("Client Certificate Types")
        || line.starts_with("Peer signing digest")
        || line.starts_with("Shared Requested")
        || line.starts_with("---")
}

/// The report without PEM blocks and hex dumps, for humans.
fn transcript(stdout: &str, stderr: &str) -> String {
    let mut out = Vec::new();
    let mut in_pem = false;
    for line in stderr.lines().chain(stdout.lines()) {
        if line.starts_with("-----BEGIN") {
            in_pem = true;
            continue;
        }
        if line.starts_with("-----END") {
            in_pem = false;
            continue;
        }
        let hex_dump = line.starts_with("    ")
            && line
                .trim_start()
                .chars()
                .take(4)
                .all(|c| c.is_ascii_hexdigit());
        if !in_pem && !hex_dump && !line.trim().is_empty() {
            out.push(line);
        }
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const STDERR_REFUSED: &str = "depth=1 CN = Internal CA\nverify return:1\ndepth=0 CN = aigw.ai-gateway.svc.cluster.local\nverify return:1\n801B5B193F7F0000:error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:../ssl/record/rec_layer_s3.c:1601:SSL alert number 116\n";
    const STDOUT: &str = "CONNECTED(00000003)\n---\nCertificate chain\n 0 s:CN = aigw.ai-gateway.svc.cluster.local\n   i:CN = Internal CA\n   a:PKEY: rsaEncryption, 2048 (bit); sigalg: RSA-SHA256\n---\nServer certificate\n-----BEGIN CERTIFICATE-----\nMIID\n-----END CERTIFICATE-----\nsubject=CN = aigw.ai-gateway.svc.cluster.local\n---\nAcceptable client certificate CA names\nCN = Internal CA\nRequested Signature Algorithms: ECDSA+SHA256\n---\nVerification: OK\n---\nNew, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384\nVerify return code: 0 (ok)\n---\n";

    #[test]
    fn parses_a_refusal_after_the_handshake() {
        let mut o = Observation::default();
        parse(&mut o, 1, STDOUT, STDERR_REFUSED);
        let tls = o.tls.expect("tls");
        assert_eq!(tls.protocol.as_deref(), Some("TLSv1.3"));
        assert_eq!(tls.cipher.as_deref(), Some("TLS_AES_256_GCM_SHA384"));
        assert_eq!(tls.verification, "OK");
        assert!(tls.client_cert_requested);
        assert_eq!(tls.acceptable_ca_names, vec!["CN = Internal CA"]);
        assert_eq!(
            tls.peer_chain,
            vec!["CN = aigw.ai-gateway.svc.cluster.local"]
        );
        assert_eq!(
            tls.verified_chain,
            vec!["CN = aigw.ai-gateway.svc.cluster.local", "CN = Internal CA"]
        );
        assert!(o.rejected);
        assert_eq!(o.alert.as_deref(), Some("certificate required"));
        assert!(o.error.is_none());
        assert!(!o.transcript.unwrap_or_default().contains("MIID"));
    }

    #[test]
    fn finds_an_answer_glued_to_a_hex_dump() {
        let mut o = Observation::default();
        let stdout = format!(
            "{STDOUT}    0150 - b6 66 64 e5 1a 05 24 HTTP/1.1 200 OK\r\nServer: nginx\n\nbody\n"
        );
        parse(&mut o, 0, &stdout, "");
        assert_eq!(o.response.map(|r| r.status), Some(200));
    }

    #[test]
    fn parses_an_http_answer() {
        let mut o = Observation::default();
        let stdout = format!(
            "{STDOUT}HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{{\"object\":\"list\"}}\n"
        );
        parse(&mut o, 0, &stdout, "depth=0 CN = x\n");
        assert_eq!(o.response.as_ref().map(|r| r.status), Some(200));
        assert!(
            o.response
                .expect("response")
                .body
                .contains("\"object\":\"list\"")
        );
        assert!(!o.rejected);
    }
}
