//! No foreign listener can ever answer a check. Each case runs the binary in a
//! private network namespace (nothing of the host is touched) whose ephemeral
//! port range is narrowed, with a squatter (this test binary, see `squat`)
//! listening on some or all of those ports and recording every connection it
//! gets. The run must use other ports or fail with exit 4 and a clear message;
//! the squatter must never be probed.
//!
//! A network namespace needs root or unprivileged user namespaces; without
//! either the cases are ignored and say so, unless `MTLS_E2E_REQUIRE_NETNS=1`
//! (CI), which makes that a failure.

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use libtest_mimic::{Failed, Trial};

/// The environment variable that turns this binary into the squatter:
/// `LOW-HIGH:STEP:LOG` listens on every STEP-th port from LOW to HIGH and
/// appends a line to LOG for each connection accepted.
pub const SQUATTER_ENV: &str = "MTLS_E2E_TEST_SQUATTER";

const LOW: u16 = 40000;
const HIGH: u16 = 40199;

/// `unshare` arguments that give a private network namespace here, if any.
fn namespace() -> Result<Vec<&'static str>, String> {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let args: Vec<&str> = if root { vec!["-n"] } else { vec!["-r", "-n"] };
    let ok = Command::new("unshare")
        .args(&args)
        .args(["sh", "-c", "ip link set lo up"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(args)
    } else {
        Err("no private network namespace can be made here (`unshare -n` needs root, `unshare -rn` unprivileged user namespaces; `ip` from iproute2)".into())
    }
}

pub fn trials() -> Vec<Trial> {
    let cases = [
        (
            "ports/a-full-ephemeral-range-fails-cleanly",
            1u16,
            4,
            Some("cannot listen on a loopback port"),
        ),
        ("ports/squatted-ports-are-never-probed", 2, 0, None),
    ];
    let available = namespace();
    let required = std::env::var("MTLS_E2E_REQUIRE_NETNS").as_deref() == Ok("1");
    if let Err(why) = &available
        && !required
    {
        eprintln!(
            "note: ports/* are ignored: {why} (set MTLS_E2E_REQUIRE_NETNS=1 to make that a failure)"
        );
    }
    cases
        .into_iter()
        .map(|(name, step, code, message)| {
            let available = available.clone();
            let ignored = available.is_err() && !required;
            Trial::test(name, move || {
                let args = available.map_err(Failed::from)?;
                squatted_run(&args, step, code, message)
            })
            .with_ignored_flag(ignored)
        })
        .collect()
}

/// Run `openwebui-ingress-mtls` in a namespace where every `step`-th port of
/// the ephemeral range is held by the squatter.
fn squatted_run(
    unshare: &[&str],
    step: u16,
    code: i32,
    message: Option<&str>,
) -> Result<(), Failed> {
    let work = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let scenario = work.path().join("openwebui-ingress-mtls");
    super::cli::copy_dir(
        &super::scenarios_root().join("openwebui-ingress-mtls"),
        &scenario,
    )?;
    let tmp = work.path().join("tmp");
    std::fs::create_dir(&tmp).map_err(|e| e.to_string())?;
    let log = work.path().join("squatter.log");
    std::fs::write(&log, "").map_err(|e| e.to_string())?;
    // The squatter says `ready` on its stdout once it listens; the script
    // reads that line before starting the run, so no timing is assumed.
    let script = format!(
        "ip link set lo up && echo '{LOW} {HIGH}' > /proc/sys/net/ipv4/ip_local_port_range || exit 90\n\
         mkfifo \"$W/ready\"\n\
         \"$SQUATTER\" > \"$W/ready\" &\n\
         S=$!\n\
         read line < \"$W/ready\"\n\
         [ \"$line\" = ready ] || {{ kill $S; exit 91; }}\n\
         TMPDIR=\"$W/tmp\" \"$BIN\" run \"$W/openwebui-ingress-mtls\" > \"$W/out\" 2> \"$W/err\"\n\
         rc=$?\n\
         kill $S\n\
         exit $rc\n"
    );
    let status = Command::new("unshare")
        .args(unshare)
        .args(["sh", "-c", &script])
        .env("W", work.path())
        .env("BIN", env!("CARGO_BIN_EXE_mtls-e2e"))
        .env(
            "SQUATTER",
            std::env::current_exe().map_err(|e| e.to_string())?,
        )
        .env(
            SQUATTER_ENV,
            format!("{LOW}-{HIGH}:{step}:{}", log.display()),
        )
        .status()
        .map_err(|e| format!("cannot run unshare: {e}"))?;
    let read = |name: &str| std::fs::read_to_string(work.path().join(name)).unwrap_or_default();
    let shown = format!(
        "\n--- exit {:?}\n--- stderr:\n{}\n--- stdout:\n{}",
        status.code(),
        read("err"),
        read("out")
    );
    let mut problems = Vec::new();
    match status.code() {
        Some(90) => return Err("the namespace's port range could not be set".into()),
        Some(91) => return Err("the squatter did not start".into()),
        Some(c) if c == code => {}
        other => problems.push(format!("expected exit {code}, got {other:?}")),
    }
    // A setup failure is reported once, in the results (stdout).
    if let Some(m) = message
        && !read("out").contains(m)
    {
        problems.push(format!("expected the results to say `{m}`"));
    }
    let contacts = std::fs::read_to_string(&log).unwrap_or_default();
    if !contacts.trim().is_empty() {
        problems.push(format!(
            "the squatter was probed on ports: {}",
            contacts.split_whitespace().collect::<Vec<_>>().join(", ")
        ));
    }
    if std::fs::read_dir(&tmp).map_or(0, std::iter::Iterator::count) > 0 {
        problems.push("the run left files in its TMPDIR".into());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}{shown}", problems.join("\n")).into())
    }
}

/// The squatter (this binary with `SQUATTER_ENV` set): listen, say `ready`,
/// record every connection until killed.
pub fn squat(spec: &str) -> std::process::ExitCode {
    let parsed = (|| {
        let (range, rest) = spec.split_once(':')?;
        let (step, log) = rest.split_once(':')?;
        let (low, high) = range.split_once('-')?;
        Some((
            low.parse::<u16>().ok()?,
            high.parse::<u16>().ok()?,
            step.parse::<usize>().ok()?,
            log.to_string(),
        ))
    })();
    let Some((low, high, step, log)) = parsed else {
        eprintln!("{SQUATTER_ENV}={spec}: expected LOW-HIGH:STEP:LOG");
        return std::process::ExitCode::from(2);
    };
    let mut listeners = Vec::new();
    for port in (low..=high).step_by(step.max(1)) {
        match std::net::TcpListener::bind(("127.0.0.1", port)) {
            Ok(l) => listeners.push((port, l)),
            Err(e) => {
                eprintln!("squatter: cannot listen on {port}: {e}");
                return std::process::ExitCode::from(2);
            }
        }
    }
    let log = std::sync::Arc::new(std::sync::Mutex::new(log));
    let threads: Vec<_> = listeners
        .into_iter()
        .map(|(port, listener)| {
            let log = log.clone();
            std::thread::spawn(move || {
                for _ in listener.incoming() {
                    let path = log.lock().map(|p| p.clone()).unwrap_or_default();
                    if let Ok(mut f) = std::fs::OpenOptions::new()
                        .append(true)
                        .open(Path::new(&path))
                    {
                        let _ = writeln!(f, "{port}");
                    }
                }
            })
        })
        .collect();
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "ready");
    let _ = stdout.flush();
    drop(stdout);
    // Until killed: the accept threads never finish.
    for t in threads {
        let _ = t.join();
    }
    let _ = std::io::stdin().lock().lines().next();
    std::process::ExitCode::SUCCESS
}
