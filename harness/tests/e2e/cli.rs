//! Command-line cases: a repository scenario, copied and broken one way, run
//! through the real binary. Each case states the exit code and the words the
//! user must see (<file:line>, what is wrong, what to do), and every case checks
//! that nothing is left behind: no files in the run's TMPDIR, no process
//! started from it.

use std::path::{Path, PathBuf};
use std::process::Command;

use libtest_mimic::{Failed, Trial};

enum Edit {
    Write(&'static str, &'static str),
    Replace(&'static str, &'static str, &'static str),
}

struct Case {
    name: &'static str,
    base: &'static str,
    edits: Vec<Edit>,
    args: Vec<&'static str>,
    env: Vec<(&'static str, &'static str)>,
    code: i32,
    stderr: Vec<&'static str>,
    stdout: Vec<&'static str>,
    /// Texts stdout must not contain.
    stdout_lacks: Vec<&'static str>,
    /// Texts stderr must not contain.
    stderr_lacks: Vec<&'static str>,
    /// Paths (under the case's work folder) that must not exist afterwards.
    absent: Vec<&'static str>,
    /// Files (under the case's work folder) that must contain these texts.
    files: Vec<(&'static str, Vec<&'static str>)>,
    /// Run with a TMPDIR of at least this many characters.
    tmpdir_length: Option<usize>,
    /// Stand-ins for kind, docker, kubectl: (name, shell script), run through
    /// `MTLS_E2E_<NAME>`; `{work}` in the script is the case's folder.
    tools: Vec<(&'static str, &'static str)>,
}

/// A second VirtualServer for the host of openwebui-ingress-mtls's own.
const SECOND_VIRTUALSERVER: &str = "apiVersion: k8s.nginx.org/v1
kind: VirtualServer
metadata:
  name: open-webui-again
  namespace: open-webui
spec:
  host: open-webui.example.com
  upstreams:
    - name: open-webui
      service: open-webui
      port: 80
  routes:
    - path: /
      action:
        pass: open-webui
";

fn case(name: &'static str) -> Case {
    Case {
        name,
        base: "openwebui-ingress-mtls",
        edits: Vec::new(),
        args: Vec::new(),
        env: Vec::new(),
        code: 0,
        stderr: Vec::new(),
        stdout: Vec::new(),
        stdout_lacks: Vec::new(),
        stderr_lacks: Vec::new(),
        absent: Vec::new(),
        files: Vec::new(),
        tmpdir_length: None,
        tools: Vec::new(),
    }
}

impl Case {
    fn base(mut self, scenario: &'static str) -> Self {
        self.base = scenario;
        self
    }
    /// Write (or overwrite) a file in the copied scenario.
    fn write(mut self, file: &'static str, text: &'static str) -> Self {
        self.edits.push(Edit::Write(file, text));
        self
    }
    /// Replace text in a file of the copied scenario (it must be there).
    fn replace(mut self, file: &'static str, from: &'static str, to: &'static str) -> Self {
        self.edits.push(Edit::Replace(file, from, to));
        self
    }
    /// Arguments; `{scenario}` is the copied scenario's folder.
    fn run(mut self, args: &[&'static str]) -> Self {
        self.args = args.to_vec();
        self
    }
    fn env(mut self, key: &'static str, value: &'static str) -> Self {
        self.env.push((key, value));
        self
    }
    fn code(mut self, code: i32) -> Self {
        self.code = code;
        self
    }
    fn stderr(mut self, needles: &[&'static str]) -> Self {
        self.stderr = needles.to_vec();
        self
    }
    fn stdout(mut self, needles: &[&'static str]) -> Self {
        self.stdout = needles.to_vec();
        self
    }

    fn stdout_lacks(mut self, needles: &[&'static str]) -> Self {
        self.stdout_lacks = needles.to_vec();
        self
    }

    fn stderr_lacks(mut self, needles: &[&'static str]) -> Self {
        self.stderr_lacks = needles.to_vec();
        self
    }

    fn tmpdir_length(mut self, length: usize) -> Self {
        self.tmpdir_length = Some(length);
        self
    }

    fn file(mut self, path: &'static str, needles: &[&'static str]) -> Self {
        self.files.push((path, needles.to_vec()));
        self
    }

    /// A stand-in for the tool `name`: a shell script, found through `MTLS_E2E_<NAME>`.
    fn tool(mut self, name: &'static str, script: &'static str) -> Self {
        self.tools.push((name, script));
        self
    }

    fn absent(mut self, paths: &[&'static str]) -> Self {
        self.absent = paths.to_vec();
        self
    }

    fn trial(self) -> Trial {
        let name = format!("cli/{}", self.name);
        Trial::test(name, move || self.execute())
    }

    fn execute(&self) -> Result<(), Failed> {
        let work = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
        let scenario = work.path().join(self.base);
        copy_dir(&super::scenarios_root().join(self.base), &scenario)?;
        for edit in &self.edits {
            match edit {
                Edit::Write(file, text) => {
                    std::fs::write(scenario.join(file), text).map_err(|e| e.to_string())?;
                }
                Edit::Replace(file, from, to) => {
                    let path = scenario.join(file);
                    let text =
                        std::fs::read_to_string(&path).map_err(|e| format!("{file}: {e}"))?;
                    if !text.contains(from) {
                        return Err(format!("test setup: {file} does not contain `{from}`").into());
                    }
                    std::fs::write(&path, text.replace(from, to)).map_err(|e| e.to_string())?;
                }
            }
        }
        let mut tmp = work.path().join("tmp");
        if let Some(length) = self.tmpdir_length {
            let pad = length.saturating_sub(tmp.as_os_str().len() + 1).max(1);
            tmp = tmp.join("t".repeat(pad));
        }
        std::fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
        // `{scenario}`: the copied scenario; `{work}`: the case's folder; `{empty}`: an empty folder.
        let empty = work.path().join("empty");
        std::fs::create_dir(&empty).map_err(|e| e.to_string())?;
        let expand = |a: &str| {
            a.replace("{scenario}", &scenario.display().to_string())
                .replace("{work}", &work.path().display().to_string())
                .replace("{empty}", &empty.display().to_string())
        };
        let args: Vec<String> = self.args.iter().map(|a| expand(a)).collect();
        let mut command = Command::new(env!("CARGO_BIN_EXE_mtls-e2e"));
        command
            .args(&args)
            .current_dir(work.path())
            .env("TMPDIR", &tmp)
            // The caller's log filter would change what the cases see on stderr.
            .env_remove("RUST_LOG");
        for (k, v) in &self.env {
            command.env(k, expand(v));
        }
        for (name, script) in &self.tools {
            use std::os::unix::fs::PermissionsExt;
            let bin = work.path().join("bin");
            std::fs::create_dir_all(&bin).map_err(|e| e.to_string())?;
            let path = bin.join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{}", expand(script)))
                .map_err(|e| e.to_string())?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| e.to_string())?;
            command.env(format!("MTLS_E2E_{}", name.to_uppercase()), &path);
        }
        let output = command
            .output()
            .map_err(|e| format!("cannot run mtls-e2e: {e}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let shown = format!(
            "\n--- exit code {:?}\n--- stderr:\n{stderr}\n--- stdout (first 40 lines):\n{}",
            output.status.code(),
            stdout.lines().take(40).collect::<Vec<_>>().join("\n")
        );
        let mut problems = Vec::new();
        if output.status.code() != Some(self.code) {
            problems.push(format!(
                "expected exit code {}, got {:?}",
                self.code,
                output.status.code()
            ));
        }
        for needle in &self.stderr {
            let needle = needle.replace("{scenario}", &scenario.display().to_string());
            if !stderr.contains(&needle) {
                problems.push(format!("expected stderr to contain `{needle}`"));
            }
        }
        for needle in &self.stdout {
            if !stdout.contains(needle) {
                problems.push(format!("expected stdout to contain `{needle}`"));
            }
        }
        for needle in &self.stderr_lacks {
            if stderr.contains(needle) {
                problems.push(format!("expected stderr not to contain `{needle}`"));
            }
        }
        for needle in &self.stdout_lacks {
            if stdout.contains(needle) {
                problems.push(format!("expected stdout not to contain `{needle}`"));
            }
        }
        let left: Vec<_> = std::fs::read_dir(&tmp)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        if !left.is_empty() {
            problems.push(format!("left behind in TMPDIR: {left:?}"));
        }
        for (path, needles) in &self.files {
            let text = std::fs::read_to_string(work.path().join(path)).unwrap_or_default();
            for needle in needles {
                if !text.contains(needle) {
                    problems.push(format!("expected {path} to contain `{needle}`:\n{text}"));
                }
            }
        }
        for path in &self.absent {
            if work.path().join(path).exists() {
                problems.push(format!("{path} was created, but nothing should have been"));
            }
        }
        let running = processes_mentioning(&tmp);
        if !running.is_empty() {
            problems.push(format!("left running: {running:?}"));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!("{}{shown}", problems.join("\n")).into())
        }
    }
}

pub(crate) fn copy_dir(from: &Path, to: &Path) -> Result<(), Failed> {
    std::fs::create_dir_all(to).map_err(|e| e.to_string())?;
    for entry in std::fs::read_dir(from)
        .map_err(|e| format!("{}: {e}", from.display()))?
        .flatten()
    {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Processes whose command line mentions `path` (an nginx started from the run folder).
fn processes_mentioning(path: &Path) -> Vec<String> {
    let needle = path.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let cmdline: PathBuf = entry.path().join("cmdline");
        if let Ok(bytes) = std::fs::read(&cmdline) {
            let text = String::from_utf8_lossy(&bytes).replace('\0', " ");
            if text.contains(&needle) {
                found.push(text);
            }
        }
    }
    found
}

/// `mtls-e2e up`, then Ctrl-C once it is up (`after_up`) or `delay` after it
/// starts (mid-setup): afterwards the run folder and every process are gone.
fn ctrl_c_cleans_up(after_up: bool, delay: std::time::Duration) -> Result<(), Failed> {
    up_then_ctrl_c(after_up, delay, &[], &|_| Ok(()))
}

/// The conf.d files of the nginx `up` says it runs (while it is up).
fn running_conf(stdout: &[String]) -> Result<String, String> {
    let dir = stdout
        .iter()
        .find_map(|l| l.strip_prefix("nginx configuration: "))
        .ok_or("no nginx configuration line")?;
    let mut conf = String::new();
    for entry in std::fs::read_dir(Path::new(dir).join("conf.d"))
        .map_err(|e| format!("{dir}: {e}"))?
        .flatten()
    {
        conf += &std::fs::read_to_string(entry.path()).unwrap_or_default();
    }
    Ok(conf)
}

/// `up --mutation`: the patch is said, the checks it must break are marked,
/// and the nginx that runs has the mutated policy (verification off).
fn up_with_a_mutation() -> Result<(), Failed> {
    up_then_ctrl_c(
        true,
        std::time::Duration::default(),
        &["--mutation", "verify-client-off"],
        &|stdout| {
            let said = |needle: &str| stdout.iter().any(|l| l.contains(needle));
            if !said("mutation verify-client-off: Policy open-webui/open-webui-mtls patched with")
                || !said("# the mutation must turn `no-cert-400` red:")
            {
                return Err(format!("up did not say the mutation: {stdout:#?}"));
            }
            let conf = running_conf(stdout)?;
            if conf.contains("ssl_verify_client on") || !conf.contains("ssl_verify_client off") {
                return Err(format!("the running nginx is not the mutated one:\n{conf}"));
            }
            Ok(())
        },
    )
}

fn up_then_ctrl_c(
    after_up: bool,
    delay: std::time::Duration,
    extra_args: &[&str],
    while_up: &dyn Fn(&[String]) -> Result<(), String>,
) -> Result<(), Failed> {
    use std::io::BufRead;
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let tmp = work.path().join("tmp");
    std::fs::create_dir(&tmp).map_err(|e| e.to_string())?;
    let scenario = super::scenarios_root().join("openwebui-ingress-mtls");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mtls-e2e"))
        .arg("up")
        .arg(&scenario)
        .args(extra_args)
        .env("TMPDIR", &tmp)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let lines = seen.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let up = line.contains("Press Ctrl-C");
            lines.lock().map(|mut l| l.push(line)).ok();
            if up {
                let _ = tx.send(());
            }
        }
    });
    let up = if after_up {
        rx.recv_timeout(std::time::Duration::from_secs(30)).is_ok()
    } else {
        std::thread::sleep(delay);
        true
    };
    let running_while_up = processes_mentioning(&tmp);
    let checked_while_up = if up && after_up {
        let stdout = seen.lock().map(|l| l.clone()).unwrap_or_default();
        while_up(&stdout)
    } else {
        Ok(())
    };
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id().cast_signed(), libc::SIGINT);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            return Err("mtls-e2e up did not stop within 15 s of SIGINT".into());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    if !up {
        return Err("mtls-e2e up never said it was up".into());
    }
    checked_while_up?;
    if after_up && !running_while_up.iter().any(|p| p.contains("nginx")) {
        return Err(format!(
            "expected nginx running from the run folder while up, saw {running_while_up:?}"
        )
        .into());
    }
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    let running = processes_mentioning(&tmp);
    // Ctrl-C is an interruption (130) wherever it lands, as the README says.
    let code_ok = status.code() == Some(130);
    if !code_ok || !left.is_empty() || !running.is_empty() {
        return Err(format!(
            "after Ctrl-C: exit {status}, left on disk {left:?}, still running {running:?}"
        )
        .into());
    }
    Ok(())
}

/// On a terminal (a pseudo-terminal from util-linux's `script`), creating
/// the kind cluster is a live line that says what and for how long, redrawn
/// in place, and cleared when the step ends. The stand-in `kind create`
/// returns once the live line has been seen (or the deadline passed).
fn long_step_on_a_terminal() -> Result<(), Failed> {
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let w = work.path();
    let bin = w.join("bin");
    std::fs::create_dir_all(&bin).map_err(|e| e.to_string())?;
    let release = w.join("seen");
    let tools = [
        (
            "kind",
            format!(
                "case \"$1 $2\" in\n\
                 'get clusters') echo 'No kind clusters found.' ;;\n\
                 'create cluster') while [ ! -e {} ]; do sleep 0.1; done\n\
                   echo 'ERROR: failed to create cluster: node image unavailable' >&2; exit 1 ;;\n\
                 esac\n",
                release.display()
            ),
        ),
        ("docker", "echo 27.0.0\n".to_string()),
        ("kubectl", "exit 0\n".to_string()),
    ];
    let mut command = Command::new("script");
    for (name, script) in &tools {
        use std::os::unix::fs::PermissionsExt;
        let path = bin.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{script}")).map_err(|e| e.to_string())?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| e.to_string())?;
        command.env(format!("MTLS_E2E_{}", name.to_uppercase()), &path);
    }
    let scenario =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/openwebui-ingress-mtls");
    let line = format!(
        "{} run --substrate kind {}",
        env!("CARGO_BIN_EXE_mtls-e2e"),
        scenario.display()
    );
    let typescript = w.join("typescript");
    let mut child = command
        .args(["-q", "-e", "-f", "-c", &line])
        .arg(&typescript)
        .current_dir(w)
        .env("HOME", w.join("home"))
        .env("XDG_CACHE_HOME", w.join("cache"))
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run util-linux's `script` (install it): {e}"))?;
    let seen = || std::fs::read(&typescript).unwrap_or_default();
    let live = "create: kind cluster mtls-e2e (Kubernetes 1.34) (";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !String::from_utf8_lossy(&seen()).contains(live)
        && std::time::Instant::now() < deadline
        && child.try_wait().map_err(|e| e.to_string())?.is_none()
    {
        // Polling the typescript for the live line, bounded by the deadline.
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::fs::write(&release, "").map_err(|e| e.to_string())?;
    let status = child.wait().map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&seen()).to_string();
    let mut problems = Vec::new();
    if status.code() != Some(4) {
        problems.push(format!("expected exit code 4, got {:?}", status.code()));
    }
    if !text.contains(live) {
        problems.push(format!("no live line `{live}...`"));
    }
    // indicatif redraws a line in place: carriage return, erase the line.
    if !text.contains("\r\x1b[2K") {
        problems.push("the live line is not redrawn in place".to_string());
    }
    if !text.contains("creating kind cluster mtls-e2e") || !text.contains("node image unavailable")
    {
        problems.push("the log lines are missing".to_string());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\n--- the terminal saw:\n{text:?}", problems.join("\n")).into())
    }
}

pub fn trials() -> Vec<Trial> {
    let mut trials = vec![
        Trial::test("cli/up-then-ctrl-c-leaves-nothing", || {
            ctrl_c_cleans_up(true, std::time::Duration::default())
        }),
        Trial::test("cli/ctrl-c-during-setup-leaves-nothing", || {
            ctrl_c_cleans_up(false, std::time::Duration::from_millis(60))
        }),
        Trial::test(
            "cli/up-with-a-mutation-runs-the-mutated-scenario",
            up_with_a_mutation,
        ),
        case("up-names-an-unknown-mutation")
            .run(&["up", "{scenario}", "--mutation", "nope"])
            .code(2)
            .stderr(&["no mutation `nope`; it has verify-client-off, wrong-ca-secret"])
            .trial(),
    ];
    trials.push(Trial::test(
        "cli/a-mock-server-lets-held-connections-go",
        held_connections,
    ));
    trials.push(Trial::test(
        "cli/ctrl-c-while-nginx-answers-v-is-130",
        ctrl_c_during_nginx_version,
    ));
    trials.push(Trial::test(
        "cli/a-terminal-shows-a-long-step-live",
        long_step_on_a_terminal,
    ));
    trials.extend(cases());
    trials.extend(lint_trials());
    trials.push(Trial::test("cli/plan-kind-matches-golden", || {
        golden(
            "plan-kind.txt",
            &[
                "plan",
                "--substrate",
                "kind",
                "scenarios/openwebui-ingress-mtls",
                "scenarios/aigw-egress-mtls",
            ],
        )
    }));
    trials.push(Trial::test(
        "cli/plan-existing-nic-5.3-matches-golden",
        || {
            golden(
                "plan-existing-nic-5.3.txt",
                &[
                    "plan",
                    "--substrate",
                    "existing",
                    "--nic-version",
                    "5.3.4",
                    "--context",
                    "staging",
                    "--image",
                    "registry.example.com/mtls-e2e:1.0",
                    "scenarios/ingress-mtls-annotation",
                    "scenarios/aigw-egress-mtls",
                ],
            )
        },
    ));
    trials.push(Trial::test(
        "cli/up-with-a-builtin-mutation-runs-the-mutated-scenario",
        up_with_a_builtin_mutation,
    ));
    trials
}

fn cases() -> Vec<Trial> {
    vec![
        case("malformed-yaml")
            .write("30-virtualserver.yaml", "apiVersion: k8s.nginx.org/v1\nkind: VirtualServer\nmetadata:\n  name: [open-webui\n")
            .run(&["run", "{scenario}"])
            .code(2)
            .stderr(&["30-virtualserver.yaml:4", "invalid YAML"]),
        case("unknown-kind")
            .write("40-pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: stray\n  namespace: open-webui\n")
            .run(&["run", "{scenario}"])
            .code(2)
            .stderr(&["40-pod.yaml:2", "unknown kind `Pod`"]),
        case("misspelled-policy-field")
            .replace("20-policy.yaml", "  ingressMTLS:", "  ingress_MTLS:")
            .run(&["run", "{scenario}"])
            .code(2)
            .stdout(&["20-policy.yaml:9", "unknown field `ingress_MTLS`"]),
        case("missing-ca-secret")
            .replace("20-policy.yaml", "clientCertSecret: open-webui-ca-cert-nginx", "clientCertSecret: does-not-exist")
            .run(&["run", "{scenario}"])
            .code(2)
            .stdout(&["30-virtualserver.yaml:", "would be Warning, not Valid", "references an invalid secret open-webui/does-not-exist", "resourceStates"]),
        case("missing-policy")
            .replace("30-virtualserver.yaml", "- name: open-webui-mtls", "- name: no-such-policy")
            .run(&["run", "{scenario}"])
            .code(2)
            .stdout(&["30-virtualserver.yaml:", "Policy open-webui/no-such-policy is missing or invalid"]),
        case("missing-issuer")
            .replace("10-cert-manager.yaml", "name: open-webui-ca-issuer\n    kind: Issuer\n---", "name: no-such-issuer\n    kind: Issuer\n---")
            .run(&["run", "{scenario}"])
            .code(2)
            .stdout(&["10-cert-manager.yaml:", "would never become Ready", "Issuer no-such-issuer does not exist"]),
        case("unknown-identity")
            .replace("scenario.yaml", "identity: alice", "identity: carol")
            .run(&["run", "{scenario}"])
            .code(2)
            .stderr(&["scenario.yaml:", "no identity named `carol`"]),
        case("check-that-cannot-fail")
            .replace("scenario.yaml", "    expect:\n      status: 200\n      bodyContains: \"<title>Open WebUI</title>\"", "    expect: {}")
            .run(&["run", "{scenario}"])
            .code(2)
            .stderr(&["scenario.yaml:", "expects nothing, so it could never fail"]),
        case("failed-openssl-step")
            .base("aigw-egress-mtls")
            .replace("scenario.yaml", "-CAkey ca.key -CAcreateserial -out client.crt", "-CAkey missing.key -CAcreateserial -out client.crt")
            .run(&["run", "{scenario}"])
            .code(2)
            .stdout(&["scenario.yaml:", "openssl x509 -req", "failed"]),
        case("no-nginx")
            .env("MTLS_E2E_NGINX", "/nonexistent/nginx")
            .run(&["run", "{scenario}"])
            .code(3)
            .stderr(&["nginx", "apt-get install nginx-light"]),
        case("kind-without-its-tools-does-nothing")
            .env("PATH", "{empty}")
            .env("HOME", "{work}/home")
            .run(&["run", "--substrate", "kind", "{scenario}"])
            .code(3)
            .stderr(&[
                "the kind substrate cannot start",
                "kind is not on PATH; install kind v0.31.0",
                "docker is not on PATH",
                "kubectl is not on PATH",
            ])
            .absent(&["home", "mtls-e2e-artifacts"]),
        case("kind-without-its-tools-still-writes-the-reports")
            .env("PATH", "{empty}")
            .env("HOME", "{work}/home")
            .run(&["run", "--substrate", "kind", "--report", "{work}/report.json", "--junit", "{work}/junit.xml", "{scenario}"])
            .code(3)
            .stderr(&["(exit 3) kind is not on PATH", "(exit 3) openssl is not on PATH"])
            .file("report.json", &["\"setup_exit_code\": 3", "kind is not on PATH", "docker is not on PATH"])
            .file("junit.xml", &["errors=\"1\"", "kind is not on PATH"])
            .absent(&["home"]),
        // kind answers, but creating the cluster fails: the ownership marker was
        // there before `kind create` ran, the reports hold the failure.
        case("a-failing-kind-create-still-writes-the-reports")
            .env("HOME", "{work}/home")
            .env("XDG_CACHE_HOME", "{work}/cache")
            .tool("kind", "case \"$1 $2\" in\n\
                'get clusters') echo 'No kind clusters found.' ;;\n\
                'create cluster') if [ -s {work}/cache/mtls-e2e/clusters/mtls-e2e.owner ]; then echo 'marker present' > {work}/kind-saw; else echo 'no marker' > {work}/kind-saw; fi\n\
                  echo 'ERROR: failed to create cluster: node image unavailable' >&2; exit 1 ;;\n\
                esac\n")
            .tool("docker", "echo 27.0.0\n")
            .tool("kubectl", "exit 0\n")
            .run(&["run", "--substrate", "kind", "--report", "{work}/report.json", "--junit", "{work}/junit.xml", "{scenario}"])
            .code(4)
            .stderr(&["failed to create cluster: node image unavailable"])
            .file("kind-saw", &["marker present"])
            .file("report.json", &["\"setup_exit_code\": 4", "node image unavailable"])
            .file("junit.xml", &["errors=\"1\"", "node image unavailable"])
            .absent(&["cache/mtls-e2e/clusters/mtls-e2e.owner"]),
        // Creating the cluster is a long step; off a terminal it is plain lines.
        case("a-long-step-off-a-terminal-is-plain-lines")
            .env("HOME", "{work}/home")
            .env("XDG_CACHE_HOME", "{work}/cache")
            .env("TERM", "xterm-256color")
            .tool("kind", "case \"$1 $2\" in\n\
                'get clusters') echo 'No kind clusters found.' ;;\n\
                'create cluster') echo 'ERROR: failed to create cluster: node image unavailable' >&2; exit 1 ;;\n\
                esac\n")
            .tool("docker", "echo 27.0.0\n")
            .tool("kubectl", "exit 0\n")
            .run(&["run", "--substrate", "kind", "{scenario}"])
            .code(4)
            .stderr(&["preparing the kind substrate\n", "cluster: creating kind cluster mtls-e2e (Kubernetes 1.34); this takes a minute or two\n"])
            .stderr_lacks(&["\x1b", "\r", "create: kind cluster"]),
        case("options-of-other-substrates-are-refused-whatever-their-value")
            .run(&["run", "--artifacts", "mtls-e2e-artifacts", "--image", "mtls-e2e:e2e", "{scenario}"])
            .code(2)
            .stderr(&[
                "--image applies to --substrate kind or existing only, not to --substrate local",
                "--artifacts applies to --substrate kind or existing only, not to --substrate local",
            ]),
        case("existing-lists-everything-missing-at-once")
            .env("PATH", "{empty}")
            .env("HOME", "{work}/home")
            .env("KUBECONFIG", "{work}/no-such-kubeconfig")
            .run(&["run", "--substrate", "existing", "--image", "mtls-e2e:e2e", "{scenario}"])
            .code(3)
            .stderr(&[
                "(exit 3) kubectl is not on PATH",
                "(exit 3) openssl is not on PATH",
                "(exit 3) no usable kubeconfig",
            ])
            .stderr_lacks(&["--image", "exists only on this machine"]),
        case("existing-without-kubectl-does-nothing")
            .env("PATH", "{empty}")
            .env("HOME", "{work}/home")
            .run(&["run", "--substrate", "existing", "{scenario}"])
            .code(3)
            .stderr(&["the existing substrate cannot start", "kubectl is not on PATH"])
            .absent(&["home"]),
        case("kind-flags-on-the-local-substrate")
            .run(&["run", "--k8s-version", "1.33", "{scenario}"])
            .code(2)
            .stderr(&["--k8s-version applies to --substrate kind only"]),
        case("artifacts-on-the-local-substrate")
            .run(&["run", "--artifacts", "{work}/a", "{scenario}"])
            .code(2)
            .stderr(&["--artifacts applies to --substrate kind or existing only"]),
        case("verbose-logs-each-probe")
            .run(&["run", "-v", "{scenario}"])
            .code(0)
            .stderr(&["running 1 scenarios", "DEBUG", "probed check=good-cert-200", "nginx is up"]),
        case("rust-log-decides-when-set")
            .env("RUST_LOG", "mtls_e2e::engine=debug")
            .run(&["run", "{scenario}"])
            .code(0)
            .stderr(&["probed check=no-cert-400"])
            .stderr_lacks(&["running 1 scenarios"]),
        case("quiet-prints-results-only")
            .run(&["run", "-q", "{scenario}"])
            .code(0)
            .stdout(&["PASS openwebui-ingress-mtls/good-cert-200"])
            .stderr_lacks(&["running", "set up in", "probed"]),
        // NIC gives a host to the older of two claimants (the larger UID within
        // one second): chance on a cluster, file order locally. Refused on
        // every substrate, at the second claimant's host, naming the first.
        case("two-resources-claiming-one-host-are-refused")
            .write("31-second-virtualserver.yaml", SECOND_VIRTUALSERVER)
            .run(&["run", "{scenario}"])
            .code(2)
            .stderr(&[
                "31-second-virtualserver.yaml:7",
                "host open-webui.example.com is also claimed by VirtualServer open-webui/open-webui",
                "30-virtualserver.yaml:",
                "give each resource its own host",
            ]),
        case("two-resources-claiming-one-host-are-refused-on-kind-too")
            .write("31-second-virtualserver.yaml", SECOND_VIRTUALSERVER)
            .run(&["plan", "--substrate", "kind", "{scenario}"])
            .code(2)
            .stderr(&["31-second-virtualserver.yaml:7", "is also claimed by VirtualServer open-webui/open-webui"]),
        case("every-unrendered-feature-at-once")
            .replace("30-virtualserver.yaml", "  routes:\n", "  routes:\n    - path: /old\n      action:\n        redirect: {url: https://open-webui.example.com/}\n    - path: /team\n      route: team/webui\n")
            .write("40-policy.yaml", "apiVersion: k8s.nginx.org/v1\nkind: Policy\nmetadata: {name: rate, namespace: open-webui}\nspec:\n  rateLimit: {rate: 1r/s, key: \"${binary_remote_addr}\", zoneSize: 10M}\n")
            .run(&["run", "{scenario}"])
            .code(2)
            .stdout(&[
                "30-virtualserver.yaml:",
                "action.return and action.redirect are not rendered",
                "routes to a VirtualServerRoute are not rendered",
                "40-policy.yaml:5: a `rateLimit` Policy is not rendered",
                "(3 problems, each with its file and line)",
            ]),
        case("evidence-is-the-failing-requests-own-log")
            .replace("scenario.yaml", "    expect:\n      status: 200\n      bodyContains: \"<title>Open WebUI</title>\"", "    expect:\n      status: 201\n      bodyContains: \"<title>Open WebUI</title>\"")
            .run(&["run", "{scenario}"])
            .code(1)
            .stdout(&["FAIL openwebui-ingress-mtls/good-cert-200", "nothing logged about this request, from 127.1."])
            .stdout_lacks(&["certificate verify error", "no required SSL certificate"]),
        case("evidence-says-which-pod-the-request-reached")
            .replace("scenario.yaml", "    expect:\n      status: 200\n      bodyContains: \"<title>Open WebUI</title>\"", "    expect:\n      status: 201\n      bodyContains: \"<title>Open WebUI</title>\"")
            .replace("scenario.yaml", "    expect:\n      status: 400\n      bodyContains: No required SSL certificate was sent", "    expect:\n      status: 200\n      bodyContains: No required SSL certificate was sent")
            .run(&["run", "{scenario}"])
            .code(1)
            .stdout(&[
                "reached: Deployment open-webui/open-webui: GET / for=127.1.",
                "-> 200",
                "FAIL openwebui-ingress-mtls/no-cert-400",
                "reached: no pod: nginx answered without proxying it",
            ]),
        case("verbose-logs-name-the-scenario-and-phase")
            .run(&["-v", "run", "{scenario}"])
            .stderr(&["scenario{name=openwebui-ingress-mtls}", "phase=\"certificates\""]),
        case("plan-says-which-ca-verifies-each-identity")
            .run(&["plan", "{scenario}"])
            .stdout(&[
                "identity alice: a chain of 1 certificate(s)",
                "Secret open-webui/open-webui-ca-cert-nginx: verifies it",
                "identity another-ca:",
                "trust scenario-ca: does not (invalid peer certificate: UnknownIssuer)",
                "certificate expired",
            ]),
        case("adopt-on-the-local-substrate")
            .run(&["run", "--adopt", "ClusterIssuer/selfsigned-issuer", "{scenario}"])
            .code(2)
            .stderr(&["--adopt applies to --substrate kind or existing only"]),
        case("adopt-names-an-object-of-the-scenario")
            .run(&["plan", "--substrate", "existing", "--adopt", "Secret/open-webui/keep-me", "{scenario}"])
            .code(2)
            .stderr(&["--adopt Secret/open-webui/keep-me: no scenario of this run declares Secret open-webui/keep-me"]),
        case("adopt-needs-a-namespace-for-a-secret")
            .run(&["plan", "--substrate", "existing", "--adopt", "Secret/keep-me", "{scenario}"])
            .code(2)
            .stderr(&["--adopt Secret/keep-me: name an object as Kind/name (cluster-scoped) or Kind/namespace/name"]),
        case("plan-says-what-is-adopted")
            .run(&["plan", "--substrate", "existing", "--adopt", "Policy/open-webui/open-webui-mtls", "{scenario}"])
            .code(0)
            .stdout(&["--adopt Policy/open-webui/open-webui-mtls: if it exists and is not ours, it is overwritten as the scenario says, without our label, and never deleted"]),
        case("unpinned-kubernetes-version")
            .run(&["run", "--substrate", "kind", "--k8s-version", "1.20", "{scenario}"])
            .code(2)
            .stderr(&["--k8s-version 1.20 is not one of 1.32, 1.33, 1.34, 1.35"]),
        case("mutations-are-local-only")
            .run(&["run", "--substrate", "kind", "--mutations", "{scenario}"])
            .code(2)
            .stderr(&["--mutations runs on the local substrate only"]),
        case("not-a-scenario")
            .run(&["run", "/nonexistent/folder"])
            .code(2)
            .stderr(&["/nonexistent/folder: no such folder"]),
        case("plan-shows-the-rendered-config")
            .run(&["plan", "{scenario}"])
            .code(0)
            .stdout(&[
                "Certificate open-webui/open-webui-client-1 -> Secret open-webui/open-webui-client-1",
                "kubectl get secret open-webui-ca-cert -n open-webui -o json | jq",
                "ssl_verify_client on;",
                "ssl_verify_depth 1;",
                "VirtualServer open-webui/open-webui",
                "Configuration for open-webui/open-webui was added or updated",
            ]),
        case("a-check-trusting-the-wrong-ca-fails")
            .replace("scenario.yaml", "trust:\n  scenario-ca:", UNRELATED_TRUST)
            .replace("scenario.yaml", "\nsteps:\n", UNRELATED_CA_STEP)
            .replace("scenario.yaml", "    identity: alice\n    trust: scenario-ca\n    expect:\n      status: 200\n      bodyContains", "    identity: alice\n    trust: unrelated-ca\n    expect:\n      status: 200\n      bodyContains")
            .run(&["run", "{scenario}"])
            .code(1)
            .stdout(&[
                "FAIL openwebui-ingress-mtls/good-cert-200",
                "server verification: expected the server chain to verify against trust `unrelated-ca`",
                "unable to get local issuer certificate",
                "PASS openwebui-ingress-mtls/second-client-200",
            ]),
        case("a-tls-check-without-trust-is-refused")
            .replace("scenario.yaml", "    identity: alice\n    trust: scenario-ca\n    expect:\n      status: 200\n      bodyContains", "    identity: alice\n    expect:\n      status: 200\n      bodyContains")
            .run(&["run", "{scenario}"])
            .code(2)
            .stderr(&["scenario.yaml:", "check `good-cert-200` talks TLS but names no `trust`", "insecure: true"]),
        case("an-insecure-check-runs-unverified")
            .replace("scenario.yaml", "    identity: alice\n    trust: scenario-ca\n    expect:\n      status: 200\n      bodyContains", "    identity: alice\n    insecure: true\n    expect:\n      status: 200\n      bodyContains")
            .run(&["run", "{scenario}"])
            .code(0)
            .stdout(&["PASS openwebui-ingress-mtls/good-cert-200"]),
        case("a-surviving-mutation-is-red-in-every-output")
            .replace("scenario.yaml", "    breaks: [no-cert-400, handshake-asks-for-client-cert]", "    breaks: [no-cert-400, handshake-asks-for-client-cert, good-cert-200]")
            .run(&["run", "--mutations", "--report", "{work}/report.json", "--junit", "{work}/junit.xml", "{scenario}"])
            .code(1)
            .stdout(&[
                "FAIL openwebui-ingress-mtls/mutation/verify-client-off: with the patch on Policy open-webui/open-webui-mtls, these checks still pass",
                "still passing: good-cert-200",
                "FAILED: ",
                "break their checks",
            ])
            .file("report.json", &["\"schema\": \"mtls-e2e.report/v2\"", "\"killed\": false", "\"survivors\": [\n", "\"mutations_killed\""])
            .file("junit.xml", &["<testcase name=\"mutation/verify-client-off\"", "<failure message=\"FAIL openwebui-ingress-mtls/mutation/verify-client-off: "]),
        case("an-unrendered-policy-type-is-refused")
            .write("25-rate-limit.yaml", "apiVersion: k8s.nginx.org/v1\nkind: Policy\nmetadata:\n  name: rate\n  namespace: open-webui\nspec:\n  rateLimit:\n    rate: 1r/s\n    zoneSize: 10M\n    key: ${binary_remote_addr}\n")
            .run(&["run", "{scenario}"])
            .code(2)
            .stdout(&["25-rate-limit.yaml:7", "`rateLimit` Policy is not rendered by the local substrate", "--substrate kind"]),
        case("an-unrendered-field-is-refused-as-such")
            .replace("30-virtualserver.yaml", "  host: open-webui.example.com\n", "  host: open-webui.example.com\n  gunzip: true\n")
            .run(&["run", "{scenario}"])
            .code(2)
            .stdout(&["30-virtualserver.yaml:", "`gunzip` is a field of VirtualServer that the local substrate does not render", "--substrate kind"]),
        case("plan-shows-the-identities-and-their-chains")
            .base("client-verification")
            .run(&["plan", "{scenario}"])
            .code(0)
            .stdout(&[
                "## 10. Identities the probes present, and the bundles they trust",
                "identity chained: a chain of 2 certificate(s), leaf first",
                "issuer \"CN = chained@verify.example.com intermediate\"",
                "trust verify-ca: CN = verify-ca",
            ]),
        case("plan-shows-checks-that-share-state")
            .base("egress-mtls-traps")
            .run(&["plan", "{scenario}"])
            .code(0)
            .stdout(&[
                "## 9. Checks that share state",
                "upstream vs_gateway_shared-upstream_aigw: shared-wrong-ca-502-before-any-session, shared-good-200,",
                "they run one at a time, in this order, from an empty cache",
            ]),
        // The built-in mutations `run --mutations` applies, from the run's own
        // list, each with its patch and its fate there: applied, excepted with
        // the scenario's why, or equivalent as NIC renders it.
        case("plan-lists-the-built-in-mutations-as-the-run-treats-them")
            .base("policy-errors")
            .run(&["plan", "{scenario}"])
            .code(0)
            .stdout(&[
                "built-in mutation builtin/verify-client-off/errors/mtls-missing-secret: patch Policy errors/mtls-missing-secret {\"spec\":{\"ingressMTLS\":{\"verifyClient\":\"off\"}}}",
                "not run, equivalent: NIC renders the same configuration",
                "built-in mutation builtin/tls-removed/errors/missing-secret: patch VirtualServer errors/missing-secret {\"spec\":{\"tls\":null}}",
                "killed when a check that passes without it turns red, or a resource's state is not the declared one",
            ]),
        case("plan-lists-a-declared-exception-with-its-why")
            .base("access-control")
            .run(&["plan", "{scenario}"])
            .code(0)
            .stdout(&[
                "mutation route-without-the-allow-list: patch VirtualServer acl/webui",
                "must break route-allow-list-403",
                "built-in mutation builtin/policy-dropped/acl/webui/deny-test-net: patch VirtualServer acl/webui",
                "not run, excepted in scenario.yaml: The deny-list names only a documentation range (RFC 5737)",
            ]),
        case("a-masked-check-explains-what-ran-before-it")
            .base("egress-mtls-traps")
            .replace("scenario.yaml", "    get: http://shared.example.com/wrong-ca/v1/models\n    expect: {status: 200, json: {object: list}}", "    get: http://shared.example.com/wrong-ca/v1/models\n    expect: {status: 502}")
            .run(&["run", "{scenario}"])
            .code(1)
            .stdout(&[
                "FAIL egress-mtls-traps/shared-wrong-ca-masked-after-a-good-session",
                "status: expected 502, got 200",
                "shared state: shares the TLS session cache of upstream vs_gateway_shared-upstream_aigw",
                "before this one ran: shared-wrong-ca-502-before-any-session, shared-good-200, shared-wrong-ca-no-reuse-502-after-a-good-session",
            ]),
        case("a-report-path-that-cannot-be-written-is-refused-before-the-run")
            .run(&["run", "--report", "{work}/no-such-folder/report.json", "{scenario}"])
            .code(2)
            .stderr(&["--report", "no-such-folder/report.json: the folder", "does not exist"])
            .absent(&["no-such-folder"]),
        case("a-junit-path-that-is-a-folder-is-refused-before-the-run")
            .run(&["run", "--junit", "{work}", "{scenario}"])
            .code(2)
            .stderr(&["--junit", "is a folder; give a file name"]),
        case("a-volume-item-path-leaving-the-volume-is-refused")
            .write("50-escape.yaml", ESCAPING_DEPLOYMENT)
            .run(&["run", "{scenario}"])
            .code(2)
            .stdout(&["50-escape.yaml:", "items[0].path: Invalid value: \"../../../escaped.key\": must not contain '..'"])
            .absent(&["escaped.key"]),
        case("a-100-character-tmpdir-works")
            .base("ingress-mergeable")
            .tmpdir_length(100)
            .run(&["run", "{scenario}"])
            .code(0)
            .stdout(&["passed, 0 failed"]),
        case("run-takes-a-scenario-file-and-selects-checks")
            .base("egress-mtls-traps")
            .run(&["run", "{scenario}/scenario.yaml", "--check", "*/shared-wrong-ca-masked*", "--skip", "nothing-matches-this"])
            .code(0)
            .stdout(&[
                "PASS egress-mtls-traps/shared-wrong-ca-masked-after-a-good-session",
                "ok: 1 checks in 1 scenarios: 1 passed, 0 failed",
            ]),
        case("a-check-selection-that-selects-nothing-is-refused")
            .run(&["run", "--check", "no-such-check", "{scenario}"])
            .code(2)
            .stderr(&["--check/--skip select no check"]),
        case("a-scenario-that-needs-kind-is-skipped-locally")
            .replace("scenario.yaml", "requires:\n  nic: \"5.3\"\n", "requires:\n  nic: \"5.3\"\n  substrate: [kind, existing]\n")
            .write("25-rate-limit.yaml", "apiVersion: k8s.nginx.org/v1\nkind: Policy\nmetadata:\n  name: rate\n  namespace: open-webui\nspec:\n  rateLimit:\n    rate: 1r/s\n    zoneSize: 10M\n    key: ${binary_remote_addr}\n")
            .run(&["run", "--report", "{work}/report.json", "--junit", "{work}/junit.xml", "{scenario}"])
            .code(0)
            .stdout(&["SKIP openwebui-ingress-mtls: runs on the kind or existing substrate only (requires.substrate), not on local"])
            .file("report.json", &["\"skipped\": \"runs on the kind or existing substrate only"])
            .file("junit.xml", &["<skipped message=\"runs on the kind or existing substrate only"]),
        case("a-failing-check-shows-its-evidence")
            .replace("scenario.yaml", "bodyContains: No required SSL certificate was sent", "bodyContains: Welcome")
            .run(&["run", "{scenario}"])
            .code(1)
            .stdout(&["FAIL openwebui-ingress-mtls/no-cert-400", "expected to contain `Welcome`", "No required SSL certificate was sent", "scenario.yaml:"]),
        // Built-in mutations. Without the chain through an intermediate, nothing notices
        // verifyDepth 1 lowered to 0: the survivor is reported with the patch to paste,
        // in every output. A check already red without any mutation kills nothing.
        case("a-builtin-survivor-shows-its-patch-and-the-score")
            .base("ingress-mtls-annotation")
            .replace("scenario.yaml", "    identity: chained-barista\n", "    identity: barista\n")
            .replace("scenario.yaml", "  - name: tea-with-cert-200\n    get: https://cafe.example.com/tea\n    identity: barista\n    trust: cafe-ca\n    expect: {status: 200", "  - name: tea-with-cert-200\n    get: https://cafe.example.com/tea\n    identity: barista\n    trust: cafe-ca\n    expect: {status: 201")
            .run(&["run", "--mutations=builtin", "--report", "{work}/report.json", "--junit", "{work}/junit.xml", "{scenario}"])
            .code(1)
            .stdout(&[
                "FAIL ingress-mtls-annotation/mutation/builtin/verify-depth-lowered/cafe/ingress-mtls-policy: no check notices when Policy cafe/ingress-mtls-policy sets ingressMTLS verifyDepth 0 instead of 1",
                "          object: Policy cafe/ingress-mtls-policy\n          merge: {\"spec\":{\"ingressMTLS\":{\"verifyDepth\":0}}}\n",
                "kubectl patch policy ingress-mtls-policy -n cafe --type merge -p '{\"spec\":{\"ingressMTLS\":{\"verifyDepth\":0}}}'",
                "PASS ingress-mtls-annotation/mutation/builtin/client-ca-missing/cafe/ingress-mtls-policy (killed by coffee-with-cert-200, ",
                "PASS ingress-mtls-annotation/mutation/builtin/annotation-policy-dropped/cafe/cafe-ingress-tls-for-another-host/ingress-mtls-policy (killed by the state of Ingress cafe/cafe-ingress-tls-for-another-host: Valid, not the declared Warning)",
                "SCORE ingress-mtls-annotation: 10 of 11 mutations killed (90%)",
            ])
            .stdout_lacks(&["(killed by tea-with-cert-200", "mutation/verify-client-off "])
            .file("report.json", &["\"mutation_score\": {\n        \"killed\": 10,\n        \"applied\": 11,", "\"outcome\": \"survived\"", "\"builtin\": true"])
            .file("junit.xml", &["<property name=\"mutation-score\" value=\"10/11\"/>", "<failure message=\"FAIL ingress-mtls-annotation/mutation/builtin/verify-depth-lowered/cafe/ingress-mtls-policy: no check notices when"]),
        case("an-equivalent-builtin-mutation-is-not-applied")
            .base("plain-http-port-80")
            .write("25-unused-policy.yaml", "apiVersion: k8s.nginx.org/v1\nkind: Policy\nmetadata: {name: unused, namespace: bypass}\nspec:\n  ingressMTLS: {clientCertSecret: bypass-ca-nginx}\n")
            .run(&["run", "--mutations=builtin", "--junit", "{work}/junit.xml", "{scenario}"])
            .code(0)
            .stdout(&[
                "SKIP plain-http-port-80/mutation/builtin/verify-client-off/bypass/unused: equivalent: NIC renders",
                "SCORE plain-http-port-80: 10 of 10 mutations killed (100%); not applied: 3 equivalent",
                "(3 built-in ones not applied: 3 equivalent, 0 excepted)",
            ])
            .file("junit.xml", &["<skipped message=\"SKIP plain-http-port-80/mutation/builtin/client-ca-missing/bypass/unused: equivalent"]),
        case("an-excepted-builtin-mutation-is-listed-and-not-run")
            .base("access-control")
            .run(&["run", "--mutations=builtin", "{scenario}"])
            .code(0)
            .stdout(&[
                "SKIP access-control/mutation/builtin/policy-dropped/acl/webui/deny-test-net: not run, as scenario.yaml says: The deny-list names only a documentation range",
                "SCORE access-control: 8 of 8 mutations killed (100%); not applied: 1 excepted in scenario.yaml",
            ])
            .stdout_lacks(&["mutation/deny-list-names-everyone"]),
        case("list-shows-the-builtin-mutations")
            .base("access-control")
            .run(&["list", "{scenario}"])
            .code(0)
            .stdout(&[
                "access-control/mutation/builtin/verify-client-off/acl/mtls (Policy acl/mtls sets ingressMTLS verifyClient `off` instead of `on`)",
                "access-control/mutation/builtin/policy-dropped/acl/webui/deny-test-net (not run: The deny-list names only",
            ]),
        case("declared-mutations-only")
            .base("plain-http-port-80")
            .run(&["run", "--mutations=declared", "{scenario}"])
            .code(0)
            .stdout(&["PASS plain-http-port-80/mutation/redirect-on-the-first-host", "SCORE plain-http-port-80: 1 of 1 mutations killed (100%)"])
            .stdout_lacks(&["builtin/"]),
        case("a-skip-naming-no-builtin-mutation-is-refused")
            .replace("scenario.yaml", "\nmutations:\n", "\nskipBuiltinMutations:\n  - name: builtin/verify-client-off/open-webui/no-such-policy\n    why: a typo\n\nmutations:\n")
            .run(&["run", "--mutations", "{scenario}"])
            .code(2)
            .stderr(&["scenario.yaml:142", "no built-in mutation of this scenario is named `builtin/verify-client-off/open-webui/no-such-policy`; `mtls-e2e list` shows them"]),
        case("a-hand-written-mutation-may-not-take-a-builtin-name")
            .replace("scenario.yaml", "  - name: verify-client-off\n", "  - name: builtin/verify-client-off\n")
            .run(&["list", "{scenario}"])
            .code(2)
            .stderr(&["scenario.yaml:", "`builtin/verify-client-off`: names starting with `builtin/` belong to the built-in mutations"]),
    ]
    .into_iter()
    .map(Case::trial)
    .collect()
}

/// A step writing a CA certificate that signed nothing in the scenarios
/// (`openssl req -x509 -newkey ec ... -subj "/CN=Unrelated Test CA" -days 36500`).
const UNRELATED_CA_STEP: &str = "
steps:
  - writeFile:
      path: unrelated-ca.crt
      content: |
        -----BEGIN CERTIFICATE-----
        MIIBjzCCATWgAwIBAgIUa09587tBpvC57JZcc+8y1UpNsAowCgYIKoZIzj0EAwIw
        HDEaMBgGA1UEAwwRVW5yZWxhdGVkIFRlc3QgQ0EwIBcNMjYxMjAxMTY0MTA4WhgP
        MjEyNjExMDcxNjQxMDhaMBwxGjAYBgNVBAMMEVVucmVsYXRlZCBUZXN0IENBMFkw
        EwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEz+jd03jKfJCPCQ2hPjkDn17ZtTqupl9R
        9A3E5Gc5O1EQc7F4sk5GjT8U9wfegb+3H/GZIyypw/biaouCpL09XaNTMFEwHQYD
        VR0OBBYEFMZCkqG7GLiiWj87hYKxzY1/OGCoMB8GA1UdIwQYMBaAFMZCkqG7GLii
        Wj87hYKxzY1/OGCoMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIh
        AJmYw8UKhxHsO0GV5I57An6GII/R9E4/h7ztkTNKpLfMAiBUAlPGktGI3NS5sT4V
        SOnkarLsAVsnci0YAM889XkahA==
        -----END CERTIFICATE-----
";

/// A Deployment whose Secret volume would write a key outside its folder.
const ESCAPING_DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: escape, namespace: open-webui}
spec:
  selector: {matchLabels: {app: escape}}
  template:
    metadata: {labels: {app: escape}}
    spec:
      containers:
        - name: escape
          image: mtls-e2e:e2e
          args: [serve, ollama, --listen, \":11434\"]
          volumeMounts: [{name: keys, mountPath: /keys}]
      volumes:
        - name: keys
          secret:
            secretName: open-webui-client-1
            items: [{key: tls.key, path: ../../../escaped.key}]
";

/// A trust bundle holding that CA.
const UNRELATED_TRUST: &str = "trust:
  unrelated-ca:
    file: unrelated-ca.crt
  scenario-ca:";

/// A terminal's Ctrl-C goes to the whole foreground process group. The
/// harness's children must not be in it: with an nginx that is slow to answer
/// `-v`, Ctrl-C then must give 130 ("interrupted"), not 3 ("nginx -v printed ``").
fn ctrl_c_during_nginx_version() -> Result<(), Failed> {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let work = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let nginx = mtls_e2e::substrate::local::nginx::find_program("nginx", "MTLS_E2E_NGINX")
        .ok_or("nginx is not installed")?;
    let ready = work.path().join("asked");
    let slow = work.path().join("slow-nginx");
    std::fs::write(
        &slow,
        format!(
            "#!/bin/sh\n[ \"$1\" = -v ] && {{ touch '{}'; sleep 5; }}\nexec '{}' \"$@\"\n",
            ready.display(),
            nginx.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    std::fs::set_permissions(&slow, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    let tmp = work.path().join("tmp");
    std::fs::create_dir(&tmp).map_err(|e| e.to_string())?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_mtls-e2e"))
        .args([
            "run",
            &super::scenarios_root()
                .join("policy-errors")
                .display()
                .to_string(),
        ])
        .env("MTLS_E2E_NGINX", &slow)
        .env("TMPDIR", &tmp)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| e.to_string())?;
    // Wait (bounded) until the harness is asking nginx for its version.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !ready.exists() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            return Err("the harness never ran `nginx -v`".into());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // SAFETY: SIGINT to the process group we just made for the child, as a terminal would.
    unsafe {
        libc::kill(-child.id().cast_signed(), libc::SIGINT);
    }
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.code() != Some(130) {
        return Err(format!(
            "expected exit 130, got {:?}: {stderr}",
            output.status.code()
        )
        .into());
    }
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    if !left.is_empty() {
        return Err(format!("left in TMPDIR: {left:?}").into());
    }
    Ok(())
}

/// A mock under more idle connections than it serves at once: it listens
/// only where `--listen` says, lets idle and silent clients go after its
/// header timeout, and still answers a real request.
fn held_connections() -> Result<(), Failed> {
    use std::io::{BufRead, Read, Write};
    use std::time::{Duration, Instant};
    let mut child = Command::new(env!("CARGO_BIN_EXE_mtls-e2e"))
        .args(["serve", "ollama", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the mock: {e}"))?;
    let result = (|| -> Result<(), Failed> {
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let address = line
            .rsplit("listening on ")
            .next()
            .map(str::trim)
            .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
            .ok_or_else(|| format!("no address in `{line}`"))?;
        if !address.ip().is_loopback() {
            return Err(format!("--listen 127.0.0.1:0 listened on {address}").into());
        }
        // More idle connections than the mock serves at once.
        let idle: Vec<std::net::TcpStream> = (0..300)
            .filter_map(|_| std::net::TcpStream::connect(address).ok())
            .collect();
        let started = Instant::now();
        let mut real = std::net::TcpStream::connect(address).map_err(|e| e.to_string())?;
        real.set_read_timeout(Some(Duration::from_secs(20)))
            .map_err(|e| e.to_string())?;
        real.write_all(b"GET / HTTP/1.1\r\nHost: ollama\r\nConnection: close\r\n\r\n")
            .map_err(|e| e.to_string())?;
        let mut answer = String::new();
        let _ = real.read_to_string(&mut answer);
        if !answer.contains("Ollama is running") {
            return Err(format!(
                "a real request behind {} idle connections got `{answer}` after {:?}",
                idle.len(),
                started.elapsed()
            )
            .into());
        }
        let mut first = idle.into_iter().next().ok_or("no idle connection")?;
        first
            .set_read_timeout(Some(Duration::from_secs(20)))
            .map_err(|e| e.to_string())?;
        let mut buf = [0u8; 64];
        match first.read(&mut buf) {
            Ok(_) => Ok(()),
            Err(e) => Err(format!("an idle connection was still open after 20 s: {e}").into()),
        }
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// `mtls-e2e ARGS` from the repository root must print exactly the golden file
/// (`MTLS_E2E_UPDATE_GOLDEN=1` rewrites it; review the diff before committing).
fn golden(file: &str, args: &[&str]) -> Result<(), Failed> {
    let root = super::scenarios_root().join("..");
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(file);
    let output = Command::new(env!("CARGO_BIN_EXE_mtls-e2e"))
        .args(args)
        .args([
            "--cache",
            "/home/user/.cache/mtls-e2e",
            "--artifacts",
            "/work/mtls-e2e-artifacts",
        ])
        .current_dir(&root)
        .output()
        .map_err(|e| format!("cannot run mtls-e2e: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    if !output.status.success() {
        return Err(format!(
            "exit {:?}: {}",
            output.status.code(),
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    if std::env::var("MTLS_E2E_UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))
            .map_err(|e| e.to_string())?;
        std::fs::write(&path, &stdout).map_err(|e| e.to_string())?;
        return Ok(());
    }
    let want = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "{}: {e} (create it with MTLS_E2E_UPDATE_GOLDEN=1)",
            path.display()
        )
    })?;
    if want == stdout {
        return Ok(());
    }
    let (want_lines, got_lines): (Vec<&str>, Vec<&str>) =
        (want.lines().collect(), stdout.lines().collect());
    let first = want_lines
        .iter()
        .zip(&got_lines)
        .position(|(a, b)| a != b)
        .unwrap_or(want_lines.len().min(got_lines.len()));
    let around = |lines: &[&str]| {
        lines
            .iter()
            .skip(first.saturating_sub(2))
            .take(6)
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    Err(format!(
        "the plan differs from {} at line {}:\n  golden:\n{}\n  now:\n{}\nIf the change is intended, rerun with MTLS_E2E_UPDATE_GOLDEN=1 and review the diff.",
        path.display(),
        first + 1,
        around(&want_lines),
        around(&got_lines)
    )
    .into())
}

/// `up --mutation builtin/...`: a built-in mutation, by the name `list` and a
/// survivor give, comes up as a hand-written one does.
fn up_with_a_builtin_mutation() -> Result<(), Failed> {
    const NAME: &str = "builtin/verify-depth-lowered/open-webui/open-webui-mtls";
    up_then_ctrl_c(
        true,
        std::time::Duration::default(),
        &["--mutation", NAME],
        &|stdout| {
            let said = |needle: &str| stdout.iter().any(|l| l.contains(needle));
            if !said(&format!(
                "mutation {NAME}: Policy open-webui/open-webui-mtls patched with {{\"spec\":{{\"ingressMTLS\":{{\"verifyDepth\":0}}}}}}"
            )) {
                return Err(format!("up did not say the mutation: {stdout:#?}"));
            }
            let conf = running_conf(stdout)?;
            if !conf.contains("ssl_verify_depth 0;") {
                return Err(format!("the running nginx is not the mutated one:\n{conf}"));
            }
            Ok(())
        },
    )
}

// ------------------------------------------------------------------ lint

/// What `lint` must find in each shipped scenario, exactly: every trap the
/// scenario demonstrates, and nothing else. The clean ones (an empty list) are
/// `aigw-egress-mtls`, `guardrail` and `upstream-references`: egress mTLS done
/// right (verifyServer, sslName, TLS 1.3, upstream TLS), and no mTLS at all.
const LINT_EXPECTED: &[(&str, &[&str])] = &[
    ("access-control", &["plain-http-bypasses-mtls"]),
    ("aigw-egress-mtls", &[]),
    (
        "client-verification",
        &[
            "optional-verification-unchecked",
            "plain-http-bypasses-mtls",
        ],
    ),
    (
        "egress-mtls-traps",
        &[
            "egress-protocols-without-tls13",
            "session-reuse-masks-verification",
            "verify-server-without-ssl-name",
        ],
    ),
    (
        "egress-without-verification",
        &["egress-without-server-verification"],
    ),
    ("guardrail", &[]),
    ("identity-header", &["plain-http-bypasses-mtls"]),
    (
        "ingress-egress-mtls",
        &[
            "egress-protocols-without-tls13",
            "plain-http-to-tls-upstream",
        ],
    ),
    (
        "ingress-mergeable",
        &[
            "egress-protocols-without-tls13",
            "ingress-mtls-not-on-server",
        ],
    ),
    (
        "ingress-mtls-annotation",
        &["ingress-mtls-ignored-for-host", "ingress-mtls-without-tls"],
    ),
    ("openwebui-ingress-mtls", &["plain-http-bypasses-mtls"]),
    ("plain-http-port-80", &["plain-http-bypasses-mtls"]),
    (
        "policy-errors",
        &[
            "crl-file-not-created",
            "ingress-mtls-not-on-server",
            "plain-http-bypasses-mtls",
            "policy-answers-500",
            "policy-ignored",
            "policy-invalid",
            "reference-not-found",
            "secret-wrong-type",
        ],
    ),
    ("upstream-references", &[]),
];

fn lint_json(args: &[&str]) -> Result<(i32, serde_json::Value), Failed> {
    let root = super::scenarios_root().join("..");
    let output = Command::new(env!("CARGO_BIN_EXE_mtls-e2e"))
        .args(["lint", "--format", "json"])
        .args(args)
        .current_dir(&root)
        .output()
        .map_err(|e| format!("cannot run mtls-e2e: {e}"))?;
    let json = serde_json::from_slice(&output.stdout).map_err(|e| {
        format!(
            "lint --format json printed no JSON ({e}): {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    Ok((output.status.code().unwrap_or(-1), json))
}

/// `lint scenarios/`: each scenario's findings are exactly the expected ones,
/// every rule's demonstrating scenario shows it, and every finding has a line.
fn lint_finds_each_known_finding() -> Result<(), Failed> {
    let (code, json) = lint_json(&["scenarios"])?;
    if json["schema"] != "mtls-e2e.lint/v1" {
        return Err(format!("schema: {}", json["schema"]).into());
    }
    let units = json["units"].as_array().ok_or("no units")?;
    let mut problems = Vec::new();
    let found = |name: &str| -> Option<Vec<String>> {
        let unit = units.iter().find(|u| u["name"] == name)?;
        let mut ids: Vec<String> = unit["findings"]
            .as_array()?
            .iter()
            .filter_map(|f| f["id"].as_str().map(str::to_string))
            .collect();
        ids.sort();
        ids.dedup();
        Some(ids)
    };
    for (name, want) in LINT_EXPECTED {
        match found(name) {
            None => problems.push(format!("{name}: not linted")),
            Some(got) if got != *want => {
                problems.push(format!("{name}: expected {want:?}, found {got:?}"));
            }
            Some(_) => {}
        }
    }
    for unit in units {
        let name = unit["name"].as_str().unwrap_or_default();
        if !LINT_EXPECTED.iter().any(|(n, _)| *n == name) {
            problems.push(format!(
                "{name}: a shipped scenario this test does not list"
            ));
        }
        for f in unit["findings"].as_array().into_iter().flatten() {
            if !f["line"].is_u64() || f["file"].as_str().is_none_or(str::is_empty) {
                problems.push(format!("{name}: a finding without file:line: {f}"));
            }
        }
    }
    for rule in json["rules"].as_array().ok_or("no rules")? {
        let (id, scenario) = (
            rule["id"].as_str().unwrap_or_default(),
            rule["scenario"].as_str().unwrap_or_default(),
        );
        if scenario.is_empty() {
            continue;
        }
        if !found(scenario).is_some_and(|ids| ids.iter().any(|i| i == id)) {
            problems.push(format!(
                "rule {id} names scenario {scenario}, where lint does not find it"
            ));
        }
    }
    if code != 1 || json["denied"] != true {
        problems.push(format!(
            "exit {code}, denied {}: the shipped traps include errors, so lint must exit 1",
            json["denied"]
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}

fn lint_trials() -> Vec<Trial> {
    vec![
        Trial::test(
            "cli/lint-finds-each-known-finding-and-nothing-on-the-clean-scenarios",
            lint_finds_each_known_finding,
        ),
        // A clean scenario exits 0; a warning-only one exits 0 by default and 1 with --deny warning.
        Trial::test("cli/lint-exit-follows-deny", || {
            let (clean, _) = lint_json(&["scenarios/guardrail"])?;
            let (warning, _) = lint_json(&["scenarios/egress-without-verification"])?;
            let (denied, _) = lint_json(&[
                "--deny",
                "warning",
                "scenarios/egress-without-verification",
            ])?;
            if (clean, warning, denied) == (0, 0, 1) {
                Ok(())
            } else {
                Err(format!("exit codes clean {clean}, warning {warning}, --deny warning {denied}; want 0, 0, 1").into())
            }
        }),
        case("lint-human-names-file-line-and-fix")
            .base("plain-http-port-80")
            .run(&["lint", "{scenario}"])
            .code(1)
            .stdout(&[
                "20-mtls.yaml:13: error[plain-http-bypasses-mtls] VirtualServer bypass/webui:",
                "fix: `spec.tls.redirect: {enable: true}`",
                "lint: 1 finding in 1 folder (1 error, 0 warnings, 0 notes)",
            ])
            .trial(),
        case("lint-fixed-variant-is-clean")
            .base("plain-http-port-80")
            .replace(
                "20-mtls.yaml",
                "  tls: {secret: server-tls}\n  policies: [{name: mtls}]",
                "  tls: {secret: server-tls, redirect: {enable: true}}\n  policies: [{name: mtls}]",
            )
            .run(&["lint", "{scenario}"])
            .stdout(&["lint: 0 findings in 1 folder"])
            .trial(),
        case("lint-sarif")
            .base("plain-http-port-80")
            .run(&["lint", "--format", "sarif", "{scenario}"])
            .code(1)
            .stdout(&["\"version\": \"2.1.0\"", "\"ruleId\": \"plain-http-bypasses-mtls\"", "\"startLine\": 13"])
            .trial(),
        case("lint-missing-folder-is-bad-input")
            .run(&["lint", "{work}/no-such-folder"])
            .code(2)
            .stderr(&["no-such-folder: no such file or folder"])
            .trial(),
        case("lint-empty-folder-is-bad-input")
            .run(&["lint", "{empty}"])
            .code(2)
            .stderr(&["no scenario.yaml and no *.yaml manifests"])
            .trial(),
        case("lint-broken-scenario-is-bad-input")
            .write("30-virtualserver.yaml", "apiVersion: k8s.nginx.org/v1\nkind: VirtualServer\nmetadata:\n  name: [open-webui\n")
            .run(&["lint", "{scenario}"])
            .code(2)
            .stderr(&["30-virtualserver.yaml:"])
            .trial(),
        // A plain folder of manifests (the scenario's, without scenario.yaml).
        case("lint-plain-manifests")
            .base("openwebui-ingress-mtls")
            .run(&["lint", "{scenario}/30-virtualserver.yaml", "{scenario}/20-policy.yaml"])
            .code(1)
            .stdout(&[
                "30-virtualserver.yaml:10: error[plain-http-bypasses-mtls]",
                "warning[reference-not-found] Policy open-webui/open-webui-mtls: Secret open-webui/open-webui-ca-cert-nginx",
            ])
            .trial(),
    ]
}
