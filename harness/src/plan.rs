//! `mtls-e2e plan`: what a run would do, without starting anything: the objects,
//! the certificates cert-manager would issue, the tutorial's steps, the pods,
//! the controller's states and warnings, and the rendered nginx configuration.

use std::fmt::Write;

use std::path::Path;

use crate::engine::Engine;
use crate::hazard::{self, SharedState};
use crate::scenario::{Probe, Scenario};
use crate::substrate::SubstrateError;
use crate::substrate::cluster::{
    self, ClusterError, ClusterOptions, Mode, actions, apply, artifacts, image, install, kind,
};
use crate::substrate::identities;
use crate::substrate::local::nic::routing::Routing;
use crate::substrate::local::planned_env;

pub(crate) async fn local(engine: &Engine, scenario: &Scenario) -> Result<String, SubstrateError> {
    let local = engine
        .local_substrate()
        .ok_or_else(|| SubstrateError::Failed("the local plan needs the local substrate".into()))?;
    let dir = engine
        .scenario_dir(scenario)
        .map_err(|e| SubstrateError::Failed(e.to_string()))?;
    let prepared = local.prepare(scenario, &dir).await?;
    let nginx_dir = dir.join("nginx");
    let env = planned_env(&nginx_dir);
    let nic = local.planned(&prepared, &prepared.objects, &nginx_dir)?;

    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(
        w,
        "# plan: {} on the local substrate (nginx {})",
        scenario.name,
        local.nginx.version_text()
    );
    let _ = writeln!(
        w,
        "#\n# {}\n",
        scenario.spec.reproduces.trim().replace('\n', "\n# ")
    );

    let _ = writeln!(
        w,
        "## 1. Objects applied ({}), as `kubectl apply` would",
        scenario.objects.len()
    );
    for o in &scenario.objects {
        let _ = writeln!(w, "  {:<58} {}", o.id.to_string(), o.origin());
    }

    let _ = writeln!(
        w,
        "\n## 2. Certificates issued (the local substrate plays cert-manager v1.19)"
    );
    if prepared.issued.is_empty() {
        let _ = writeln!(w, "  (none)");
    }
    for i in &prepared.issued {
        let _ = writeln!(
            w,
            "  Certificate {} -> Secret {} by {}",
            i.certificate, i.secret, i.issuer
        );
        let _ = writeln!(w, "    {}", i.info.summary());
    }

    let _ = writeln!(
        w,
        "\n## 3. The tutorial's manual steps, in order, in a private work folder"
    );
    if prepared.steps.is_empty() {
        let _ = writeln!(w, "  (none)");
    }
    for s in &prepared.steps {
        let _ = writeln!(w, "  $ {}", s.replace('\n', "\n    "));
    }

    let _ = writeln!(
        w,
        "\n## 4. Pods (our mtls-e2e image, run in-process on loopback)"
    );
    for p in &prepared.pods {
        let _ = writeln!(
            w,
            "  Deployment {}/{}: mtls-e2e serve {}",
            p.namespace,
            p.name,
            p.args.component()
        );
    }

    let _ = writeln!(
        w,
        "\n## 5. Controller states (NGINX Ingress Controller 5.5.4)"
    );
    for s in &nic.states {
        let expected = scenario.expected_state(&s.id());
        let mark = if s.state == expected {
            ""
        } else {
            "   <-- the scenario expects "
        };
        let _ = writeln!(
            w,
            "  {:<58} {}{mark}{}",
            s.id(),
            s.state,
            if mark.is_empty() {
                ""
            } else {
                expected.as_str()
            }
        );
        let _ = writeln!(w, "    {}", s.message);
    }
    if !nic.upstreams.is_empty() {
        let _ = writeln!(
            w,
            "  upstream endpoints, as NIC resolves each Service port (plan shows example addresses):"
        );
    }
    for u in &nic.upstreams {
        match &u.endpoints {
            Ok(e) if !e.is_empty() => {
                let _ = writeln!(w, "    Service {} -> {}", u.service, e.join(", "));
            }
            Ok(_) => {
                let _ = writeln!(
                    w,
                    "    Service {} -> no endpoints: nginx proxies it to NIC's 502 server",
                    u.service
                );
            }
            Err(why) => {
                let _ = writeln!(
                    w,
                    "    Service {} -> none; NIC logs \"Error getting Endpoints for Upstream: {why}\" \
                     (no event: the resource stays Valid) and nginx proxies it to its 502 server, so requests get 502",
                    u.service
                );
            }
        }
    }

    let _ = writeln!(
        w,
        "\n## 6. Secrets the controller writes ({})",
        env.secrets_dir
    );
    for f in &nic.secret_files {
        let _ = writeln!(
            w,
            "  {}{}",
            f.name,
            if f.private { " (mode 0600)" } else { "" }
        );
    }

    let _ = writeln!(w, "\n## 7. nginx.conf");
    let _ = writeln!(
        w,
        "# Ports are examples: each run binds free loopback ports (NIC's 80 -> {}, 443 -> {}).",
        env.http_listen.join(" "),
        env.https_listen.join(" ")
    );
    let _ = writeln!(w, "{}", local.main_conf(&env, &nginx_dir));
    for (name, text) in &nic.conf_files {
        let _ = writeln!(w, "## conf.d/{name}\n{text}");
    }

    let _ = writeln!(w, "## 8. Checks");
    checks(w, scenario);
    mutations(w, scenario, |changed| {
        local.renders_alike_with(&prepared, changed, &nginx_dir)
    });
    let routing = Routing::parse(nic.conf_files.iter().map(|(_, t)| t.as_str()));
    shared_state(w, &hazard::find(scenario, &routing));
    let probe_dir = dir.join("probes");
    std::fs::create_dir_all(&probe_dir).map_err(|e| SubstrateError::Failed(e.to_string()))?;
    let probes = identities::resolve(scenario, &prepared.secrets, &prepared.workdir, &probe_dir)?;
    identities_section(w, &probes, &prepared.secrets);
    Ok(out)
}

/// The client identities the probes present and the bundles they trust: each
/// certificate of a chain, leaf first, as section 2 shows certificates.
fn identities_section(
    w: &mut String,
    probes: &identities::Probes,
    secrets: &crate::scenario::steps::Secrets,
) {
    // What may verify a client: the nginx.org/ca Secrets NIC would use, and
    // the bundles the scenario names.
    let mut verifiers: Vec<(String, String)> = secrets
        .iter()
        .filter(|(_, s)| s.type_ == "nginx.org/ca")
        .filter_map(|(key, s)| {
            let ca = s.data.get("ca.crt")?;
            Some((
                format!("Secret {key}"),
                String::from_utf8_lossy(ca).into_owned(),
            ))
        })
        .collect();
    verifiers.extend(
        probes
            .trust
            .iter()
            .map(|(name, t)| (format!("trust {name}"), t.pem.clone())),
    );
    let _ = writeln!(
        w,
        "\n## 10. Identities the probes present, and the bundles they trust"
    );
    for (name, id) in &probes.identities {
        let chain = crate::pki::split_certs(&id.chain_pem).unwrap_or_default();
        let _ = writeln!(
            w,
            "  identity {name}: a chain of {} certificate(s), leaf first",
            chain.len()
        );
        for der in &chain {
            match crate::pki::CertInfo::from_der(der) {
                Ok(info) => {
                    let _ = writeln!(w, "    {}", info.summary());
                }
                Err(e) => {
                    let _ = writeln!(w, "    (unreadable certificate: {e})");
                }
            }
        }
        let verdicts: Vec<String> = verifiers
            .iter()
            .map(
                |(what, ca)| match crate::tls::client_chain_verifies(&id.chain_pem, ca) {
                    Ok(()) => format!("{what}: verifies it"),
                    Err(e) => format!("{what}: does not ({e})"),
                },
            )
            .collect();
        if !verdicts.is_empty() {
            let _ = writeln!(
                w,
                "    as a client certificate, now (the chain and dates; nginx also applies verifyDepth):"
            );
            for v in verdicts {
                let _ = writeln!(w, "      {v}");
            }
        }
    }
    for (name, t) in &probes.trust {
        let certs = crate::pki::split_certs(&t.pem).unwrap_or_default();
        let subjects: Vec<String> = certs
            .iter()
            .filter_map(|der| crate::pki::CertInfo::from_der(der).ok())
            .map(|i| i.subject)
            .collect();
        let _ = writeln!(w, "  trust {name}: {}", subjects.join("; "));
    }
}

/// Checks that share state (an upstream's TLS session cache), and how they run.
fn shared_state(w: &mut String, groups: &[SharedState]) {
    let _ = writeln!(w, "\n## 9. Checks that share state");
    if groups.is_empty() {
        let _ = writeln!(
            w,
            "  none: no two checks reach one upstream through locations with different TLS settings, so every check runs concurrently"
        );
    }
    for g in groups {
        let _ = writeln!(
            w,
            "  upstream {}: {} share its TLS session cache (proxy_ssl_session_reuse on) through locations whose \
             proxy_ssl settings differ; NGINX may resume a session another location verified, so they run one at \
             a time, in this order, from an empty cache",
            g.upstreams.join(", "),
            g.checks.join(", ")
        );
    }
}

/// Each check: the probe, who it is made as, what it expects.
fn checks(w: &mut String, scenario: &Scenario) {
    for c in &scenario.checks {
        let probe = match &c.probe {
            Probe::Http { method, url, .. } => format!("{} {}", method.as_str(), url.display()),
            Probe::OpenSsl {
                target, servername, ..
            } => {
                format!(
                    "openssl s_client -connect {}:{} -servername {servername}",
                    target.host(),
                    target.port()
                )
            }
        };
        let who = c.identity.as_deref().map_or_else(
            || " with no client certificate".into(),
            |i| format!(" as {i}"),
        );
        let trust = match (&c.trust, c.insecure) {
            (Some(t), _) => format!(", the server verified against {t}"),
            (None, true) => ", the server not verified (insecure)".to_string(),
            (None, false) => String::new(),
        };
        let expect = serde_json::to_string(&c.expect).unwrap_or_default();
        let _ = writeln!(
            w,
            "  {}: {probe}{who}{trust}\n    expect {}",
            c.name,
            strip_empty(&expect)
        );
    }
}

/// What `run --mutations` applies (local only), in its order: the
/// hand-written mutations, then the built-in ones the run derives (the same
/// list, `Scenario::builtin`), each with its patch and what becomes of it.
/// `alike` says whether NIC renders a changed object only it reads exactly as
/// without it (the run does not apply that one: equivalent).
fn mutations(
    w: &mut String,
    scenario: &Scenario,
    alike: impl Fn(&crate::manifest::Object) -> Result<bool, crate::manifest::ManifestError>,
) {
    let patch = |m: &crate::scenario::spec::MutationSpec| {
        format!(
            "patch {} {}",
            m.patch.object,
            serde_json::to_string(&m.patch.merge).unwrap_or_default()
        )
    };
    for m in &scenario.spec.mutations {
        let _ = writeln!(
            w,
            "  mutation {}: {}\n    must break {}",
            m.name,
            patch(m),
            m.breaks.join(", ")
        );
    }
    for m in &scenario.builtin {
        let does = m.why.as_deref().unwrap_or_default();
        let fate = if let Some(skip) = scenario.builtin_exception(&m.name) {
            format!(
                "not run, excepted in scenario.yaml: {}",
                skip.why.split_whitespace().collect::<Vec<_>>().join(" ")
            )
        } else {
            let changed = scenario
                .mutated(m)
                .ok()
                .and_then(|s| {
                    crate::scenario::spec::parse_object_ref(&m.patch.object)
                        .ok()
                        .and_then(|id| s.object(&id).cloned())
                })
                .filter(|o| crate::substrate::local::read_by_nic_only(o.id.kind));
            match changed.map(|o| alike(&o)) {
                Some(Ok(true)) => format!(
                    "not run, equivalent: {}",
                    crate::substrate::local::EQUIVALENT
                ),
                _ => "killed when a check that passes without it turns red, or a resource's state is not the declared one".into(),
            }
        };
        let _ = writeln!(
            w,
            "  built-in mutation {}: {}\n    {does}; {fate}",
            m.name,
            patch(m)
        );
    }
}

/// The expectation JSON without null and empty fields.
fn strip_empty(json: &str) -> String {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(json) else {
        return json.into();
    };
    let kept: serde_json::Map<_, _> = map
        .into_iter()
        .filter(|(_, v)| {
            !(v.is_null()
                || v.as_array().is_some_and(Vec::is_empty)
                || v.as_object().is_some_and(serde_json::Map::is_empty))
        })
        .collect();
    serde_json::Value::Object(kept).to_string()
}

/// `mtls-e2e plan --substrate kind|existing`: every command, download (URL and
/// sha256) and manifest the run would use, in order, without touching anything.
/// Deterministic (no keys are made), so a golden test keeps it honest.
pub(crate) fn cluster(
    options: &ClusterOptions,
    scenarios: &[&Scenario],
) -> Result<String, ClusterError> {
    let mut out = String::new();
    let w = &mut out;
    let kind_mode = match &options.mode {
        Mode::Kind { name, k8s, .. } => Some((name.as_str(), k8s.as_str())),
        Mode::Existing { .. } => None,
    };
    let nic = options.nic.as_deref().unwrap_or(install::DEFAULT_NIC);
    let cache = options.cache.display().to_string();
    let _ = writeln!(
        w,
        "# plan: {} scenario(s) on the {} substrate",
        scenarios.len(),
        options.label()
    );
    let _ = writeln!(w, "# downloads, kubeconfig and cluster markers: {cache}");
    let _ = writeln!(
        w,
        "# artifacts of failures: {}\n",
        options.artifacts.display()
    );

    let mut section = 0;
    let mut heading = |w: &mut String, title: &str| {
        section += 1;
        let _ = writeln!(w, "## {section}. {title}");
    };
    heading(
        w,
        "Preflight, in order (nothing is done unless all of it passes; everything missing is listed at once)",
    );
    for check in actions::preflight(options, scenarios) {
        check.describe(w);
    }

    let image = &options.image;
    match (kind_mode, &options.mode) {
        (Some((name, k8s)), _) => {
            heading(
                w,
                &format!("Cluster: kind {} with Kubernetes {k8s}", kind::KIND_VERSION),
            );
            let config = format!("{cache}/{name}-kind.yaml");
            let kubeconfig = format!("{cache}/{name}.kubeconfig");
            let _ = writeln!(
                w,
                "  sweep: delete clusters named {}* whose creating run is gone ({cache}/clusters/*.owner)",
                kind::CLUSTER_PREFIX
            );
            let _ = writeln!(w, "  $ kind get clusters");
            let recreate = matches!(options.mode, Mode::Kind { recreate: true, .. });
            if recreate {
                let _ = writeln!(
                    w,
                    "  if {name} exists and its marker {cache}/clusters/{name}.owner says this tool created it (--recreate): $ kind delete cluster --name {name}; then create it as below (no marker, or another run using it: stop, exit 2)"
                );
            }
            let _ = writeln!(
                w,
                "  {}if {name} exists: $ kind get kubeconfig --name {name} > {kubeconfig}; $ kubectl --kubeconfig {kubeconfig} get --raw /readyz",
                if recreate { "without --recreate, " } else { "" }
            );
            let _ = writeln!(
                w,
                "    and it must fit: $ kind get nodes --name {name}; $ docker inspect NODE...; $ kubectl --kubeconfig {kubeconfig} get nodes -o json:\n    \
                 every node runs {}, a node is labelled ingress-ready=true and publishes 80 and 443 on 127.0.0.1 (reuse it); \
                 otherwise stop (exit 4), saying what does not fit and whether --recreate may delete it",
                kind::node_image(k8s)?
            );
            let args = kind::create_args(name, Path::new(&config), Path::new(&kubeconfig));
            let _ = writeln!(w, "  otherwise: $ kind {}", args.join(" "));
            let _ = writeln!(w, "  --- {config}");
            for line in kind::config(k8s)?.lines() {
                let _ = writeln!(w, "  {line}");
            }

            heading(
                w,
                "Downloads (sha256-verified; a cached file with the right digest is used as is)",
            );
            let mut downloads = vec![install::cert_manager()];
            downloads.extend(install::nic_downloads(nic)?);
            for d in &downloads {
                let _ = writeln!(
                    w,
                    "  {}\n    sha256 {}  {} bytes  -> {}",
                    d.url,
                    d.sha256,
                    d.size,
                    d.cached(&options.cache).display()
                );
            }

            heading(
                w,
                &format!(
                    "Installs, concurrently (server-side apply, field manager {}; CRDs first, each waited for until Established)",
                    apply::FIELD_MANAGER
                ),
            );
            for branch in actions::installs(nic) {
                for action in branch {
                    action.describe(w)?;
                }
            }

            heading(
                w,
                &format!("Image {image}, at the same time as the installs"),
            );
            let _ = writeln!(
                w,
                "  decided before the cluster is created, from `docker info --format {{{{.Architecture}}}}`:"
            );
            let _ = writeln!(
                w,
                "  on Linux with a node of this binary's architecture, imported (nothing is pulled):"
            );
            let _ = writeln!(
                w,
                "  root: this mtls-e2e binary at {}, the libraries `ldd` lists at their paths, /tmp",
                image::ENTRYPOINT
            );
            let _ = writeln!(
                w,
                "  $ tar --numeric-owner --owner=0 --group=0 -C ROOT -cf ROOT.tar ."
            );
            let _ = writeln!(
                w,
                "  $ docker {} < ROOT.tar",
                shell_words(&image::import_args(image))
            );
            let _ = writeln!(
                w,
                "  elsewhere (macOS, another CPU), built from the repository's Dockerfile:"
            );
            let _ = writeln!(
                w,
                "  $ docker {}",
                shell_words(&image::dockerfile_args(image, Path::new("REPOSITORY")))
            );
            let _ = writeln!(w, "  $ kind load docker-image {image} --name {name}");
        }
        (None, Mode::Existing { context, .. }) => {
            heading(
                w,
                &format!(
                    "Cluster: the kubeconfig's, context {}",
                    context.as_deref().unwrap_or("(current)")
                ),
            );
            let _ = writeln!(
                w,
                "  probes reach NIC through port-forwards to a running pod of the workload the preflight found (its ports 80 and 443, on 127.0.0.1)"
            );
        }
        (None, Mode::Kind { .. }) => {}
    }

    heading(w, "Scenarios, in parallel, each in its own namespaces");
    for s in scenarios {
        let _ = writeln!(
            w,
            "\n### {} ({})",
            s.name,
            s.spec
                .requires
                .nic
                .as_deref()
                .map_or_else(|| "any NIC".into(), |v| format!("needs NIC {v}"))
        );
        // On kind the version is the one installed; on an existing cluster only a given one is known.
        let known = kind_mode.is_some() || options.nic.is_some();
        if let Some(reason) = cluster::skip_reason(s, nic).filter(|_| known) {
            let _ = writeln!(w, "  SKIP: {reason}");
            continue;
        }
        actions::narrate_up(&actions::up(s, options), w);
        let _ = writeln!(
            w,
            "  checks (hosts through NIC at {}):",
            if kind_mode.is_some() {
                "127.0.0.1:80 and :443, kind's host ports"
            } else {
                "port-forwards to NIC"
            }
        );
        checks(w, s);
        let _ = writeln!(
            w,
            "  on failure, into {}:",
            options.artifacts.join(&s.name).display()
        );
        let nic_at = artifacts::NicLocation::expected(&options.mode);
        let _ = writeln!(
            w,
            "    (NIC's namespace and workload are read from its pods labelled {} when the run collects)",
            cluster::install::NIC_POD_SELECTOR
        );
        for item in artifacts::scenario_items(s, &nic_at) {
            let _ = writeln!(
                w,
                "    {}: $ kubectl {}",
                item.file,
                shell_words(&item.kubectl)
            );
        }
        actions::narrate_down(&actions::down(s), w);
    }

    heading(w, "End of the run");
    if let Some((name, _)) = kind_mode {
        let _ = writeln!(
            w,
            "  if anything failed: $ kind export logs {}/kind-logs --name {name}",
            options.artifacts.display()
        );
        let _ = writeln!(
            w,
            "  if this run created the cluster and --keep was not given: $ kind delete cluster --name {name}"
        );
    } else {
        let _ = writeln!(
            w,
            "  only objects this run labelled as ours were deleted; nothing else was changed"
        );
    }
    Ok(out)
}

/// Words as a shell would need them (quoted where they hold special characters).
fn shell_words(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            // Unlike the crate, leave `--tail=5000` bare: these lines are read by people.
            if !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@".contains(c))
            {
                w.into()
            } else {
                shell_words::quote(w)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
