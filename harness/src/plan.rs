//! `mtls-e2e plan`: what a run would do, without starting anything: the objects,
//! the certificates cert-manager would issue, the tutorial's steps, the pods,
//! the controller's states and warnings, and the rendered nginx configuration.

use std::fmt::Write;

use crate::engine::Engine;
use crate::scenario::{Probe, Scenario};
use crate::substrate::SubstrateError;
use crate::substrate::local::nic::RenderEnv;
use crate::substrate::local::{PlannedEndpoints, local_env};

pub async fn local(engine: &Engine, scenario: &Scenario) -> Result<String, SubstrateError> {
    let dir = engine
        .scenario_dir(scenario)
        .map_err(|e| SubstrateError::Failed(e.to_string()))?;
    let prepared = engine.local.prepare(scenario, &dir).await?;
    let nginx_dir = dir.join("nginx");
    let http = "127.0.0.1:18080"
        .parse()
        .map_err(|_| SubstrateError::Failed("address".into()))?;
    let https = "127.0.0.1:18443"
        .parse()
        .map_err(|_| SubstrateError::Failed("address".into()))?;
    let env: RenderEnv = local_env(&nginx_dir, http, https);
    let nic = engine
        .local
        .render(&prepared, &env, &PlannedEndpoints(&prepared.objects))?;

    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(
        w,
        "# plan: {} on the local substrate (nginx {})",
        scenario.name,
        engine.nginx_version()
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
            if mark.is_empty() { "" } else { expected }
        );
        let _ = writeln!(w, "    {}", s.message);
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
        "# Ports are examples: each run binds free loopback ports (NIC's 80 -> {http}, 443 -> {https})."
    );
    let _ = writeln!(w, "{}", engine.local.main_conf(&env, &nginx_dir));
    for (name, text) in &nic.conf_files {
        let _ = writeln!(w, "## conf.d/{name}\n{text}");
    }

    let _ = writeln!(w, "## 8. Checks");
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
        let who = c
            .identity
            .as_deref()
            .map(|i| format!(" as {i}"))
            .unwrap_or_else(|| " with no client certificate".into());
        let trust = c
            .trust
            .as_deref()
            .map(|t| format!(", trusting {t}"))
            .unwrap_or_default();
        let expect = serde_json::to_string(&c.expect).unwrap_or_default();
        let _ = writeln!(
            w,
            "  {}: {probe}{who}{trust}\n    expect {}",
            c.name,
            strip_empty(&expect)
        );
    }
    for m in &scenario.spec.mutations {
        let _ = writeln!(
            w,
            "  mutation {}: patch {} must break {}",
            m.name,
            m.patch.object,
            m.breaks.join(", ")
        );
    }
    Ok(out)
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
                || v.as_array().is_some_and(|a| a.is_empty())
                || v.as_object().is_some_and(|o| o.is_empty()))
        })
        .collect();
    serde_json::Value::Object(kept).to_string()
}
