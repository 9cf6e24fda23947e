//! `init` on every shipped scenario's manifests alone (`scenario.yaml` removed):
//! the generated scenario must pass on the local substrate at once, with every
//! built-in mutation `run --mutations` applies killed (100%), and every one it
//! declares no request can tell apart (`skipBuiltinMutations`) surviving when
//! it is run after all: an exception is a passing verdict on its stated
//! reason, so a wrong reason fails here. Each trial also prints how many of
//! the hand-written checks the generated scenario reproduces (same target,
//! path, identity and expected status) and how many checks it adds; `init/*`
//! cases cover a `kubectl get -o yaml` dump and the refusal to overwrite.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use libtest_mimic::{Failed, Trial};
use mtls_e2e::scenario::{Check, Probe, Scenario};

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mtls-e2e"))
}

fn copy_manifests(from: &Path, to: &Path) -> Result<(), Failed> {
    std::fs::create_dir_all(to).map_err(|e| e.to_string())?;
    for entry in std::fs::read_dir(from).map_err(|e| e.to_string())? {
        let path = entry.map_err(|e| e.to_string())?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().to_string());
        if path.extension().is_some_and(|e| e == "yaml") && name.as_deref() != Some("scenario.yaml")
        {
            std::fs::copy(&path, to.join(name.unwrap_or_default())).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Run the binary; `Err` with its output unless it exits `code`.
fn run(args: &[&str], code: i32) -> Result<String, Failed> {
    let out = binary().args(args).output().map_err(|e| e.to_string())?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.code() != Some(code) {
        return Err(format!(
            "`mtls-e2e {}` exited {:?}, not {code}:\n{text}",
            args.join(" "),
            out.status.code()
        )
        .into());
    }
    Ok(text)
}

/// What an identity presents, independent of its name: a Secret, files, or
/// what the harness issues (signer and flags).
fn identity_class(s: &Scenario, name: Option<&str>) -> String {
    let Some(name) = name else {
        return "none".into();
    };
    let Some(spec) = s.spec.identities.get(name) else {
        return format!("unknown {name}");
    };
    if let Some(secret) = &spec.secret {
        return format!("secret {secret}");
    }
    if let Some(files) = &spec.files {
        return format!("files {}", files.cert);
    }
    match &spec.issue {
        Some(i) => {
            let signer = match (&i.signed_by.secret, &i.signed_by.new_ca) {
                (Some(secret), _) => format!("by {secret}"),
                (_, Some(_)) => "by a new CA".into(),
                _ => "by files".into(),
            };
            format!(
                "issued {signer} expired={} not_yet_valid={} intermediate={}",
                i.expired, i.not_yet_valid, i.via_intermediate
            )
        }
        None => "none".into(),
    }
}

/// A check's target, identity and expected status: the measure of "the same check".
fn key(s: &Scenario, c: &Check) -> String {
    // Target and path, as the debug form shows them (Url and Target are plain data).
    let target = match &c.probe {
        Probe::Http { url, .. } => format!(
            "{} {:?} {}",
            if url.https { "https" } else { "http" },
            url.target,
            url.path.split('?').next().unwrap_or_default()
        ),
        Probe::OpenSsl { target, .. } => format!("openssl {target:?}"),
    };
    let outcome = match (c.expect.status, c.expect.rejected) {
        (Some(status), _) => status.to_string(),
        (None, Some(true)) => "refused".into(),
        _ => format!(
            "handshake requested={:?} names={:?}",
            c.expect.client_cert_requested, c.expect.acceptable_ca_names
        ),
    };
    format!(
        "{target} | {} | {outcome}",
        identity_class(s, c.identity.as_deref())
    )
}

/// The built-in mutations of a `--report` file: (name, outcome, what it does,
/// why not applied or what killed it).
fn builtin_outcomes(report: &Path) -> Result<Vec<(String, String, String, String)>, String> {
    let text = std::fs::read_to_string(report).map_err(|e| e.to_string())?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let text_of = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    Ok(json["scenarios"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["mutations"].as_array().into_iter().flatten())
        .filter(|m| m["builtin"] == true)
        .map(|m| {
            let detail = match m["outcome"].as_str() {
                Some("killed") => text_of(&m["killed_by"]),
                _ => text_of(&m["not_applied"]),
            };
            (
                text_of(&m["name"]),
                text_of(&m["outcome"]),
                text_of(&m["why"]),
                detail,
            )
        })
        .collect())
}

/// The generated scenario text with its `skipBuiltinMutations` (written last)
/// replaced by `names`, each with `why`.
fn with_exceptions(text: &str, names: &[&String], why: &str) -> Result<String, Failed> {
    let mut kept: Vec<&str> = Vec::new();
    let mut block = false;
    for line in text.lines() {
        if line == "skipBuiltinMutations:" {
            block = true;
        } else if block && !(line.starts_with(' ') || line.starts_with('#') || line.is_empty()) {
            return Err(format!("init wrote `{line}` after skipBuiltinMutations").into());
        }
        if !block {
            kept.push(line);
        }
    }
    let mut out = kept.join("\n");
    out.push_str("\nskipBuiltinMutations:\n");
    for name in names {
        let _ = write!(out, "  - name: \"{name}\"\n    why: {why}\n");
    }
    Ok(out)
}

/// Each mutation init excepted, run in a copy of `folder` that excepts every
/// other built-in mutation instead (`outcomes`, from the first run, judged
/// those): all must survive, or init's reason was wrong.
fn excepted_survive(
    name: &str,
    folder: &Path,
    work: &Path,
    outcomes: &[(String, String, String, String)],
    excepted: &[&String],
) -> Result<(), Failed> {
    // Run only what init excepted: every other built-in mutation is
    // excepted in this copy instead (the run above judged those).
    let others: Vec<&String> = outcomes
        .iter()
        .filter(|(_, o, _, _)| o != "excepted")
        .map(|(m, _, _, _)| m)
        .collect();
    let copy = work.join(format!("{name}-excepted-only"));
    copy_manifests(folder, &copy)?;
    let text = std::fs::read_to_string(folder.join("scenario.yaml")).map_err(|e| e.to_string())?;
    let text = with_exceptions(&text, &others, "judged by the first run of this trial")?;
    std::fs::write(copy.join("scenario.yaml"), text).map_err(|e| e.to_string())?;
    let second = work.join("excepted-only.json");
    let (copy_text, second_text) = (copy.display().to_string(), second.display().to_string());
    let _ = binary()
        .args([
            "-q",
            "run",
            "--mutations=builtin",
            "--report",
            &second_text,
            &copy_text,
        ])
        .output()
        .map_err(|e| e.to_string())?;
    let ran = builtin_outcomes(&second)?;
    let wrong: Vec<String> = excepted
        .iter()
        .filter_map(|m| {
            let why = outcomes
                .iter()
                .find(|(n, _, _, _)| n == *m)
                .map(|(_, _, _, why)| why.clone())
                .unwrap_or_default();
            match ran.iter().find(|(n, _, _, _)| n == *m) {
                Some((_, outcome, _, _)) if outcome == "survived" => None,
                Some((_, outcome, _, detail)) => Some(format!(
                    "  {m}: {outcome} ({detail}), yet init excepted it saying: {why}"
                )),
                None => Some(format!("  {m}: not run at all")),
            }
        })
        .collect();
    if !wrong.is_empty() {
        return Err(format!(
            "init declared mutations no request tells apart, but run they are not survivors:\n{}",
            wrong.join("\n")
        )
        .into());
    }
    Ok(())
}

/// `init`, then `run --mutations`, on one shipped scenario's manifests: it
/// passes and kills every built-in mutation it applies; then each one it
/// excepts, run alone, must survive.
fn shipped(dir: &Path) -> Result<(), Failed> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let folder = work.path().join(&name);
    copy_manifests(dir, &folder)?;
    let folder_text = folder.display().to_string();
    run(&["-q", "init", &folder_text], 0)?;
    let report = work.path().join("report.json");
    let report_text = report.display().to_string();
    let ran = binary()
        .args([
            "-q",
            "run",
            "--mutations",
            "--report",
            &report_text,
            &folder_text,
        ])
        .output()
        .map_err(|e| e.to_string())?;
    let outcomes = builtin_outcomes(&report).map_err(|e| {
        format!(
            "{e}; `run --mutations` said:\n{}{}",
            String::from_utf8_lossy(&ran.stdout),
            String::from_utf8_lossy(&ran.stderr)
        )
    })?;
    let not_killed: Vec<String> = outcomes
        .iter()
        .filter(|(_, outcome, _, _)| {
            !matches!(outcome.as_str(), "killed" | "equivalent" | "excepted")
        })
        .map(|(m, outcome, does, detail)| format!("  {m}: {outcome}: {does} {detail}"))
        .collect();
    if !not_killed.is_empty() || ran.status.code() != Some(0) {
        return Err(format!(
            "init then `run --mutations` should pass and kill every applied built-in mutation (exit {:?}); not killed:\n{}\n{}",
            ran.status.code(),
            not_killed.join("\n"),
            String::from_utf8_lossy(&ran.stdout)
        )
        .into());
    }
    let applied = outcomes.iter().filter(|(_, o, _, _)| o == "killed").count();
    let excepted: Vec<&String> = outcomes
        .iter()
        .filter(|(_, o, _, _)| o == "excepted")
        .map(|(m, _, _, _)| m)
        .collect();
    if !excepted.is_empty() {
        excepted_survive(&name, &folder, work.path(), &outcomes, &excepted)?;
    }
    let hand = Scenario::load(dir).map_err(|e| e.to_string())?;
    let generated = Scenario::load(&folder).map_err(|e| e.to_string())?;
    let theirs: BTreeMap<String, &str> = generated
        .checks
        .iter()
        .map(|c| (key(&generated, c), c.name.as_str()))
        .collect();
    let reproduced = hand
        .checks
        .iter()
        .filter(|c| theirs.contains_key(&key(&hand, c)))
        .count();
    let mine: Vec<String> = hand.checks.iter().map(|c| key(&hand, c)).collect();
    let added = theirs.keys().filter(|k| !mine.contains(k)).count();
    eprintln!(
        "init/{name}: reproduces {reproduced} of {} hand-written checks; {} generated, {added} not among them; \
         built-in mutations: {applied} of {applied} applied killed, {} excepted (each survives when run)",
        hand.checks.len(),
        generated.checks.len(),
        excepted.len()
    );
    Ok(())
}

/// `kubectl get -o yaml` output: one `kind: List` with server-set fields.
fn list_dump(dir: &Path) -> Result<String, Failed> {
    let scenario = Scenario::load(dir).map_err(|e| e.to_string())?;
    let items: Vec<serde_json::Value> = scenario
        .objects
        .iter()
        .filter(|o| !o.origin().file.starts_with("manifests/components"))
        .map(|o| {
            let mut json = o.to_json();
            if let Some(meta) = json.get_mut("metadata").and_then(|m| m.as_object_mut()) {
                meta.insert("uid".into(), "0f1e2d3c".into());
                meta.insert("resourceVersion".into(), "4711".into());
                meta.insert(
                    "managedFields".into(),
                    serde_json::json!([{"manager": "kubectl"}]),
                );
            }
            json["status"] = serde_json::json!({"state": "Valid"});
            json
        })
        .collect();
    let mut list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
    // Something the harness does not model, as a real dump has.
    if let Some(items) = list["items"].as_array_mut() {
        items.push(serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": "open-webui"}}));
    }
    // JSON is YAML.
    serde_json::to_string_pretty(&list).map_err(|e| e.to_string().into())
}

fn dump_then_run() -> Result<(), Failed> {
    let root =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios/openwebui-ingress-mtls");
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dump = work.path().join("dump.yaml");
    std::fs::write(&dump, list_dump(&root)?).map_err(|e| e.to_string())?;
    let out_dir = work.path().join("from-dump");
    let (dump_text, out_text) = (dump.display().to_string(), out_dir.display().to_string());
    let summary = run(&["-q", "init", &out_text, "--from", &dump_text], 0)?;
    if !summary.contains("set aside") || !summary.contains("ServiceAccount default") {
        return Err(format!("the ServiceAccount should be listed as set aside:\n{summary}").into());
    }
    let split = std::fs::read_dir(&out_dir)
        .map_err(|e| e.to_string())?
        .count();
    if split < 8 {
        return Err(format!("the dump should be split per object, found {split} files").into());
    }
    let written =
        std::fs::read_to_string(out_dir.join("scenario.yaml")).map_err(|e| e.to_string())?;
    for wanted in [
        "copySecret:",
        "open-webui-no-cert-400",
        "acceptableCaNames",
        "FINDING: port 80",
    ] {
        if !written.contains(wanted) {
            return Err(format!("scenario.yaml lacks `{wanted}`:\n{written}").into());
        }
    }
    for server_field in ["resourceVersion", "managedFields", "0f1e2d3c"] {
        for entry in std::fs::read_dir(&out_dir).map_err(|e| e.to_string())? {
            let path = entry.map_err(|e| e.to_string())?.path();
            let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
            if text.contains(server_field) {
                return Err(format!("{} still holds `{server_field}`", path.display()).into());
            }
        }
    }
    run(&["-q", "run", &out_text], 0)?;
    Ok(())
}

fn refuses_to_overwrite() -> Result<(), Failed> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios/client-verification");
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    copy_manifests(&root, work.path())?;
    let dir = work.path().display().to_string();
    std::fs::write(work.path().join("scenario.yaml"), "# mine\n").map_err(|e| e.to_string())?;
    let before: Vec<_> = std::fs::read_dir(work.path())
        .map_err(|e| e.to_string())?
        .count()
        .to_string()
        .into_bytes();
    let out = run(&["init", &dir], 2)?;
    if !out.contains("scenario.yaml exists") || !out.contains("remove it") {
        return Err(format!("the refusal should say what exists and what to do:\n{out}").into());
    }
    let kept =
        std::fs::read_to_string(work.path().join("scenario.yaml")).map_err(|e| e.to_string())?;
    let after: Vec<_> = std::fs::read_dir(work.path())
        .map_err(|e| e.to_string())?
        .count()
        .to_string()
        .into_bytes();
    if kept != "# mine\n" || before != after {
        return Err("init touched the folder it refused".into());
    }
    Ok(())
}

/// Two VirtualServers for one host: `run` would refuse the scenario on every
/// substrate, so `init` says so and writes nothing.
fn refuses_two_resources_claiming_one_host() -> Result<(), Failed> {
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let vs = |name: &str| {
        format!(
            "apiVersion: k8s.nginx.org/v1\nkind: VirtualServer\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  \
             host: cafe.example.com\n  upstreams: [{{name: tea, service: tea-svc, port: 80}}]\n  \
             routes: [{{path: /, action: {{pass: tea}}}}]\n"
        )
    };
    std::fs::write(work.path().join("a.yaml"), vs("first")).map_err(|e| e.to_string())?;
    std::fs::write(work.path().join("b.yaml"), vs("second")).map_err(|e| e.to_string())?;
    let dir = work.path().display().to_string();
    let out = run(&["init", &dir], 2)?;
    if !out.contains("b.yaml:5") || !out.contains("also claimed by VirtualServer default/first") {
        return Err(format!(
            "the refusal should name the second claimant's host and the first:\n{out}"
        )
        .into());
    }
    if work.path().join("scenario.yaml").exists() {
        return Err("init wrote a scenario it refused".into());
    }
    Ok(())
}

fn refuses_what_the_local_substrate_cannot_run() -> Result<(), Failed> {
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    std::fs::write(
        work.path().join("rate.yaml"),
        "apiVersion: k8s.nginx.org/v1\nkind: Policy\nmetadata: {name: rate, namespace: default}\nspec:\n  rateLimit: {rate: 1r/s, key: x, zoneSize: 1M}\n",
    )
    .map_err(|e| e.to_string())?;
    let dir = work.path().display().to_string();
    let out = run(&["init", &dir], 2)?;
    if !out.contains("rate.yaml:5")
        || !out.contains("rateLimit")
        || !out.contains("init wrote nothing")
    {
        return Err(
            format!("the refusal should name the object's file:line and why:\n{out}").into(),
        );
    }
    if work.path().join("scenario.yaml").exists() {
        return Err("init wrote a scenario it refused".into());
    }
    Ok(())
}

pub fn trials() -> Vec<Trial> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.join("scenario.yaml").is_file())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    let mut trials: Vec<Trial> = dirs
        .into_iter()
        .map(|dir| {
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            Trial::test(
                format!("init/{name}-manifests-alone-pass-and-kill-every-mutation"),
                move || shipped(&dir),
            )
        })
        .collect();
    trials.push(Trial::test(
        "init/kubectl-list-dump-is-split-and-passes",
        dump_then_run,
    ));
    trials.push(Trial::test(
        "init/refuses-to-overwrite-scenario-yaml",
        refuses_to_overwrite,
    ));
    trials.push(Trial::test(
        "init/refuses-what-the-local-substrate-cannot-run",
        refuses_what_the_local_substrate_cannot_run,
    ));
    trials.push(Trial::test(
        "init/refuses-two-resources-claiming-one-host",
        refuses_two_resources_claiming_one_host,
    ));
    trials
}
