//! From the world to the scenario: identities from the client CAs, trust
//! bundles from the server certificates' CAs, and per host the checks its
//! configuration implies; then the text of `scenario.yaml`, commented.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use super::checks::{self, Answer, Client};
use super::emit::{inline, scalar};
use super::world::{Setup, World};

/// One generated check.
#[derive(Debug, Clone)]
pub(crate) struct GenCheck {
    pub name: String,
    /// Why it expects what it expects (comment lines; the first is its `why`).
    pub reasons: Vec<String>,
    /// `get: URL` or `openssl: host:port`.
    pub verb: (&'static str, String),
    pub identity: Option<String>,
    /// `None` on a TLS check: `insecure: true`.
    pub trust: Option<String>,
    pub tls: bool,
    pub expect: Vec<(String, Value)>,
    /// Its upstream handshake fails: listed before the checks that could leave
    /// a session behind on the same upstream (see the README's "Checks that share state").
    pub egress_fails: bool,
    /// Checks whose requests go first (to leave a TLS session behind).
    pub after: Vec<String>,
}

/// A client identity of the scenario.
#[derive(Debug, Clone)]
pub(crate) struct GenIdentity {
    pub name: String,
    pub why: String,
    /// The identity's spec, as YAML flow (`{secret: ns/name}`).
    pub spec: Value,
}

/// Everything `scenario.yaml` says.
#[derive(Debug, Clone, Default)]
pub(crate) struct Plan {
    pub name: Option<String>,
    pub reproduces: String,
    pub requires_nic: &'static str,
    pub identities: Vec<GenIdentity>,
    /// name → (Secret, why).
    pub trust: Vec<(String, String, String)>,
    pub checks: Vec<GenCheck>,
    /// `Kind ns/name` → (state, NIC's message).
    pub states: BTreeMap<String, (String, String)>,
    /// Built-in mutations no request tells apart, each with why.
    pub exceptions: Vec<super::mutations::Exception>,
    /// What was not derived, and why.
    pub notes: Vec<String>,
}

/// `CN = open-webui-ca` → `open-webui-ca`.
fn slug(text: &str) -> String {
    let cn = text.rsplit("CN = ").next().unwrap_or(text);
    let mut out = String::new();
    for c in cn.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// The identities for one client CA.
#[derive(Debug, Clone, Default)]
struct CaIdentities {
    good: Option<String>,
    /// The Secret of the manifests `good` is, if it is one.
    good_secret: Option<String>,
    /// The manifests' other client certificates from this CA: (identity, Secret).
    others: Vec<(String, String)>,
    expired: Option<String>,
    not_yet_valid: Option<String>,
    via_intermediate: Option<String>,
}

const OTHER_CA: &str = "other-ca";

struct Builder<'a> {
    world: &'a World,
    plan: Plan,
    by_ca: BTreeMap<String, CaIdentities>,
    ca_order: Vec<String>,
}

impl Builder<'_> {
    fn identity(&mut self, name: String, why: String, spec: Value) -> String {
        if !self.plan.identities.iter().any(|i| i.name == name) {
            self.plan.identities.push(GenIdentity {
                name: name.clone(),
                why,
                spec,
            });
        }
        name
    }

    /// Identities for the client CA `ca` (its subject), made once.
    fn identities_for(&mut self, ca: &str) -> CaIdentities {
        if let Some(found) = self.by_ca.get(ca) {
            return found.clone();
        }
        self.ca_order.push(ca.to_string());
        let several = self.ca_order.len() > 1;
        let suffix = if several {
            format!("-{}", slug(ca))
        } else {
            String::new()
        };
        let mut ids = CaIdentities::default();
        let signer = self.world.signer_of(ca);
        let clients = self.world.clients_of(ca);
        for (i, secret) in clients.iter().enumerate() {
            let name = secret.rsplit('/').next().unwrap_or(secret).to_string();
            let name = self.identity(
                name,
                format!(
                    "{} client certificate of the manifests, issued by `{ca}`",
                    if i == 0 { "a" } else { "another" }
                ),
                json!({"secret": secret}),
            );
            if i == 0 {
                ids.good = Some(name);
                ids.good_secret = Some(secret.clone());
            } else {
                ids.others.push((name, secret.clone()));
            }
        }
        if clients.is_empty()
            && let Some(signer) = &signer
        {
            ids.good = Some(self.identity(
                format!("client{suffix}"),
                format!("a client certificate from `{ca}` (the manifests have none), signed with Secret {signer}'s key"),
                json!({"issue": {"commonName": format!("client@{}", slug(ca)), "signedBy": {"secret": signer}}}),
            ));
        }
        match &signer {
            Some(signer) => {
                for (field, label, why, flag) in [
                    ("expired", "expired", "expired an hour ago", "expired"),
                    (
                        "not_yet_valid",
                        "not-yet-valid",
                        "valid only from tomorrow",
                        "notYetValid",
                    ),
                    (
                        "via_intermediate",
                        "via-intermediate",
                        "signed by an intermediate CA under it (the probe presents leaf + intermediate)",
                        "viaIntermediate",
                    ),
                ] {
                    let name = self.identity(
                        format!("{label}{suffix}"),
                        format!("from `{ca}`, {why}"),
                        json!({"issue": {"commonName": format!("{label}@{}", slug(ca)), "signedBy": {"secret": signer}, flag: true}}),
                    );
                    match field {
                        "expired" => ids.expired = Some(name),
                        "not_yet_valid" => ids.not_yet_valid = Some(name),
                        _ => ids.via_intermediate = Some(name),
                    }
                }
            }
            None => self.plan.notes.push(format!(
                "no Secret of the manifests holds the key of the client CA `{ca}`: no expired, not-yet-valid or intermediate identity can be issued from it"
            )),
        }
        self.by_ca.insert(ca.to_string(), ids.clone());
        ids
    }

    fn other_ca(&mut self) -> String {
        self.identity(
            OTHER_CA.into(),
            "a certificate from a CA that nothing in the manifests trusts".into(),
            json!({"issue": {"commonName": "stranger@example.com", "signedBy": {"newCa": "Another CA (mtls-e2e init)"}}}),
        )
    }

    /// The trust bundle for the CA `issuer`, if a Secret holds it.
    fn trust(&mut self, issuer: &str) -> Option<String> {
        let secret = self.world.bundle_of(issuer)?;
        let name = slug(issuer);
        if !self.plan.trust.iter().any(|(n, _, _)| *n == name) {
            self.plan.trust.push((
                name.clone(),
                secret.clone(),
                format!("the CA `{issuer}` that issued the hosts' server certificates"),
            ));
        }
        Some(name)
    }

    fn push(&mut self, host_checks: &mut Vec<GenCheck>, mut check: GenCheck) {
        let base = check.name.clone();
        let mut n = 2;
        while self
            .plan
            .checks
            .iter()
            .chain(host_checks.iter())
            .any(|c| c.name == check.name)
        {
            check.name = format!("{base}-{n}");
            n += 1;
        }
        host_checks.push(check);
    }
}

/// A check for `answer`, or a note when there is no prediction.
#[allow(clippy::too_many_arguments)]
fn check_for(
    b: &mut Builder<'_>,
    out: &mut Vec<GenCheck>,
    name: String,
    url: String,
    tls: bool,
    identity: Option<String>,
    trust: Option<String>,
    answer: Answer,
    context: &[String],
) {
    let (expect, why, egress_fails, trust) = match answer {
        Answer::Http {
            expect,
            why,
            egress_fails,
            ..
        } => (expect, why, egress_fails, trust),
        Answer::Rejected { alert, why } => (
            vec![
                ("rejected".into(), json!(true)),
                ("alert".into(), json!(alert)),
            ],
            why,
            false,
            // Refused before any certificate is shown: nothing to verify.
            None,
        ),
        Answer::Unknown(why) => {
            b.plan.notes.push(format!("{url}: no check: {why}"));
            return;
        }
    };
    let mut reasons = vec![why];
    reasons.extend(context.iter().cloned());
    b.push(
        out,
        GenCheck {
            name,
            reasons,
            verb: ("get", url),
            identity,
            trust,
            tls,
            expect,
            egress_fails,
            after: Vec::new(),
        },
    );
}

fn host_label(host: &str, hosts: &[(String, String)]) -> String {
    let first = host.split('.').next().unwrap_or(host);
    let clash = hosts
        .iter()
        .filter(|(h, _)| h.split('.').next() == Some(first))
        .count()
        > 1;
    slug(if clash || first == "*" { host } else { first })
}

fn location_label(location: &str) -> String {
    let s = slug(location.trim_start_matches(['=', '^', '~', ' ']));
    if s.is_empty() { "root".into() } else { s }
}

/// How a host's session checks are made.
struct SessionCtx<'a> {
    tls: bool,
    identity: Option<String>,
    trust: Option<String>,
    context: &'a [String],
}

/// A location whose own upstream handshake fails, sent right after another
/// location of the same upstream got its answer: with session reuse on it
/// resumes the TLS session that one left behind (see the README's "Checks
/// that share state"), and answers otherwise.
#[allow(clippy::too_many_arguments)]
fn session_checks(
    b: &mut Builder<'_>,
    out: &mut Vec<GenCheck>,
    world: &World,
    host: &str,
    h: &str,
    paths: &[(String, String)],
    client: &Client,
    cas: &[String],
    ctx: &SessionCtx<'_>,
) {
    let scheme = if ctx.tls { "https" } else { "http" };
    for (location_a, path_a) in paths {
        let Some(session) = checks::session_of(world, host, ctx.tls, path_a, client, cas) else {
            continue;
        };
        let url_a = format!("{scheme}://{host}{path_a}");
        let primer = out.iter().find(|c| {
            c.verb.1 == url_a
                && c.identity == ctx.identity
                && c.after.is_empty()
                && c.expect.iter().any(|(k, v)| {
                    k == "status" && v.as_u64().is_some_and(|s| (200..300).contains(&s))
                })
        });
        let Some(primer) = primer.map(|c| c.name.clone()) else {
            continue;
        };
        for (location_b, path_b) in paths {
            if location_b == location_a {
                continue;
            }
            let Answer::Http {
                status: fresh,
                egress_fails: true,
                ..
            } = checks::predict(world, host, ctx.tls, path_b, client, cas)
            else {
                continue;
            };
            let answer =
                checks::predict_after(world, host, ctx.tls, path_b, client, cas, Some(&session));
            if !matches!(&answer, Answer::Http { status, .. } if *status != fresh) {
                continue;
            }
            let mut reasons = vec![format!(
                "FINDING: alone, location `{location_b}` answers {fresh} (its upstream handshake fails); right after {primer} \
                 (location `{location_a}`, the same upstream {}) it resumes that TLS session",
                session.egress.upstream
            )];
            reasons.extend(ctx.context.iter().cloned());
            let label = format!(
                "{h}-{}-after-{}",
                location_label(location_b),
                location_label(location_a)
            );
            let before = out.len();
            check_for(
                b,
                out,
                label,
                format!("{scheme}://{host}{path_b}"),
                ctx.tls,
                ctx.identity.clone(),
                ctx.trust.clone(),
                answer,
                &reasons,
            );
            if let Some(added) = out.get_mut(before) {
                added.after = vec![primer.clone()];
            }
        }
    }
}

/// The checks, identities and trust bundles the world implies.
pub(crate) fn plan(world: &World, setup: &Setup) -> Plan {
    let mut b = Builder {
        world,
        plan: Plan {
            notes: setup.notes.clone(),
            ..Plan::default()
        },
        by_ca: BTreeMap::new(),
        ca_order: Vec::new(),
    };
    let hosts = checks::hosts(world);
    let states = checks::states(world);
    for (host, owner) in &hosts {
        let h = host_label(host, &hosts);
        let mut out = Vec::new();
        let state_note: Vec<String> = states
            .iter()
            .filter(|(id, _)| owner.starts_with(id.as_str()))
            .map(|(id, (state, message))| format!("NIC reports {id} {state}: {message}"))
            .collect();
        let mut context = vec![format!("host of {owner}")];
        context.extend(state_note);
        let (served, tls) = checks::served(world, host);
        if !served {
            for (tls, label) in [(false, "not-served-http"), (true, "not-served-tls")] {
                let scheme = if tls { "https" } else { "http" };
                let answer = checks::predict(world, host, tls, "/", &Client::None, &[]);
                check_for(
                    &mut b,
                    &mut out,
                    format!("{h}-{label}"),
                    format!("{scheme}://{host}/"),
                    tls,
                    None,
                    None,
                    answer,
                    &context,
                );
            }
            b.plan.checks.extend(out);
            continue;
        }
        let cas = checks::client_cas(world, host);
        let mode = checks::verify_mode(world, host);
        let mut trust = None;
        if tls {
            match checks::server_cert(world, host) {
                Some(cert) if checks::names_host(&cert, host) => {
                    trust = b.trust(&cert.issuer);
                    if trust.is_none() {
                        b.plan.notes.push(format!(
                            "{host}: no Secret holds `{}`, the CA of its server certificate: its TLS checks do not verify the server",
                            cert.issuer
                        ));
                    }
                }
                Some(cert) => b.plan.notes.push(format!(
                    "{host}: its server certificate names {} but not the host: its TLS checks do not verify the server (a browser would refuse it)",
                    cert.sans.join(", ")
                )),
                None => {}
            }
        }
        let ids = cas.first().map(|ca| b.identities_for(ca));
        for ca in cas.iter().skip(1) {
            b.identities_for(ca);
        }
        let good_client = match (&ids, cas.first()) {
            (Some(ids), Some(ca)) if ids.good.is_some() && mode.is_some() => Some((
                ids.good.clone(),
                Client::Good {
                    ca: ca.clone(),
                    secret: ids.good_secret.clone(),
                },
            )),
            _ => None,
        };
        // Each location, with the client that gets through (if any).
        let over = tls;
        let mut paths = Vec::new();
        for location in world.routing.locations(host, over) {
            match checks::probe_path(world, host, over, &location) {
                Some(p) => paths.push((location, p)),
                None => b.plan.notes.push(format!(
                    "{host}: location `{location}` is a regular expression: no check (write one by hand)"
                )),
            }
        }
        let (pass_identity, pass_client) = good_client.clone().unwrap_or((None, Client::None));
        let main = paths
            .iter()
            .find(|(_, p)| {
                matches!(
                    checks::predict(world, host, over, p, &pass_client, &cas),
                    Answer::Http {
                        status: 200..=299,
                        ..
                    }
                )
            })
            .or_else(|| paths.first())
            .map_or_else(|| "/".into(), |(_, p)| p.clone());
        let scheme = if tls { "https" } else { "http" };
        let main_url = format!("{scheme}://{host}{main}");
        let insecure_why = |t: &Option<String>| {
            if t.is_none() && tls {
                vec!["the server is not verified (see the note at the top)".to_string()]
            } else {
                Vec::new()
            }
        };
        if tls {
            let mut expect = vec![("clientCertRequested".to_string(), json!(mode.is_some()))];
            let mut reasons = vec![match &mode {
                Some((m, d)) => format!(
                    "ssl_verify_client {m} (verify depth {d}): the server asks for a certificate, naming the CAs of ssl_client_certificate"
                ),
                None => {
                    "no ingressMTLS applies to this server: nginx asks for no certificate".into()
                }
            }];
            if mode.is_some() && !cas.is_empty() {
                expect.push(("acceptableCaNames".into(), json!(cas)));
            }
            if trust.is_some() {
                expect.push(("verification".into(), json!("OK")));
                reasons.push("the server chain verifies against its CA".into());
            }
            expect.push(("protocol".into(), json!("TLSv1.3")));
            reasons.push(
                "nginx's default ssl_protocols (TLSv1.2 TLSv1.3): the probe negotiates TLS 1.3"
                    .into(),
            );
            reasons.extend(context.clone());
            reasons.extend(insecure_why(&trust));
            b.push(
                &mut out,
                GenCheck {
                    name: format!("{h}-handshake"),
                    reasons,
                    verb: ("get", main_url.clone()),
                    identity: None,
                    trust: trust.clone(),
                    tls: true,
                    expect,
                    egress_fails: false,
                    after: Vec::new(),
                },
            );
            if mode.is_some() && !cas.is_empty() {
                let mut expect = vec![("acceptableCaNames".to_string(), json!(cas))];
                if trust.is_some() {
                    expect.push(("verification".into(), json!("OK")));
                }
                b.push(
                    &mut out,
                    GenCheck {
                        name: format!("{h}-openssl-names-the-ca"),
                        reasons: vec![
                            "the same handshake through the real openssl s_client: the CA names it prints".into(),
                        ],
                        verb: ("openssl", format!("{host}:443")),
                        identity: pass_identity.clone(),
                        trust: trust.clone(),
                        tls: true,
                        expect,
                        egress_fails: false,
                        after: Vec::new(),
                    },
                );
            }
            // Every identity against the main path.
            if let Some(ids) = &ids
                && mode.is_some()
            {
                let other = b.other_ca();
                let mut probes: Vec<(String, Option<String>, Client)> =
                    vec![("no-cert".into(), None, Client::None)];
                if let Some((identity, client)) = &good_client {
                    probes.push(("good-cert".into(), identity.clone(), client.clone()));
                }
                // Each of the manifests' client certificates: each can lose its usage.
                if let Some(ca) = cas.first() {
                    for (identity, secret) in &ids.others {
                        probes.push((
                            identity.clone(),
                            Some(identity.clone()),
                            Client::Good {
                                ca: ca.clone(),
                                secret: Some(secret.clone()),
                            },
                        ));
                    }
                }
                probes.push(("other-ca".into(), Some(other), Client::OtherCa));
                for (label, identity, client) in [
                    ("expired", ids.expired.clone(), Client::Expired),
                    (
                        "not-yet-valid",
                        ids.not_yet_valid.clone(),
                        Client::NotYetValid,
                    ),
                    (
                        "via-intermediate",
                        ids.via_intermediate.clone(),
                        Client::ViaIntermediate,
                    ),
                ] {
                    if identity.is_some() {
                        probes.push((label.into(), identity, client));
                    }
                }
                for (label, identity, client) in probes {
                    let answer = checks::predict(world, host, true, &main, &client, &cas);
                    let status = match &answer {
                        Answer::Http { status, .. } => status.to_string(),
                        _ => "refused".into(),
                    };
                    let mut ctx = context.clone();
                    ctx.extend(insecure_why(&trust));
                    check_for(
                        &mut b,
                        &mut out,
                        format!("{h}-{label}-{status}"),
                        main_url.clone(),
                        true,
                        identity,
                        trust.clone(),
                        answer,
                        &ctx,
                    );
                }
            } else {
                let answer = checks::predict(world, host, true, &main, &Client::None, &cas);
                check_for(
                    &mut b,
                    &mut out,
                    format!("{h}-https"),
                    main_url.clone(),
                    true,
                    None,
                    trust.clone(),
                    answer,
                    &context,
                );
            }
        } else {
            let answer = checks::predict(world, host, true, "/", &Client::None, &[]);
            check_for(
                &mut b,
                &mut out,
                format!("{h}-no-tls"),
                format!("https://{host}/"),
                true,
                None,
                None,
                answer,
                &context,
            );
        }
        // Every other location (every egress route), with the client that gets through.
        for (location, path) in &paths {
            if tls && *path == main {
                continue;
            }
            let answer = checks::predict(world, host, tls, path, &pass_client, &cas);
            let identity = if tls { pass_identity.clone() } else { None };
            let mut ctx = vec![format!("location `{location}`")];
            ctx.extend(context.clone());
            check_for(
                &mut b,
                &mut out,
                format!("{h}-{}", location_label(location)),
                format!("{scheme}://{host}{path}"),
                tls,
                identity,
                if tls { trust.clone() } else { None },
                answer,
                &ctx,
            );
        }
        // Plain HTTP on port 80: a VirtualServer (and an Ingress) always listens there.
        if tls {
            let answer = checks::predict(world, host, false, &main, &Client::None, &cas);
            let mut ctx = context.clone();
            if mode.is_some()
                && matches!(
                    &answer,
                    Answer::Http {
                        status: 200..=299,
                        ..
                    }
                )
            {
                ctx.insert(
                    0,
                    "FINDING: port 80 bypasses ingress mTLS: nginx asks for client certificates only on TLS connections (spec.tls.redirect, or the Ingress's ssl-redirect, closes it)".into(),
                );
            }
            check_for(
                &mut b,
                &mut out,
                format!("{h}-plain-http"),
                format!("http://{host}{main}"),
                false,
                None,
                None,
                answer,
                &ctx,
            );
        }
        session_checks(
            &mut b,
            &mut out,
            world,
            host,
            h.as_str(),
            &paths,
            &pass_client,
            &cas,
            &SessionCtx {
                tls,
                identity: if tls { pass_identity.clone() } else { None },
                trust: if tls { trust.clone() } else { None },
                context: &context,
            },
        );
        // A failing upstream handshake stores no session; listed first, no
        // check before it can leave one behind that it would resume.
        out.sort_by_key(|c| !c.egress_fails);
        b.plan.checks.extend(out);
    }
    b.plan.states = states;
    b.plan.requires_nic = if world.objects.iter().any(|o| {
        o.id.kind == crate::manifest::Kind::Ingress
            && o.annotations.contains_key("nginx.org/policies")
    }) {
        "5.5"
    } else {
        "5.3"
    };
    b.plan
}

/// `scenario.yaml`'s text.
#[allow(clippy::too_many_lines)]
pub(crate) fn text(
    plan: &Plan,
    setup: &Setup,
    manifests: &[String],
    set_aside: &[super::input::SetAside],
) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# Written by `mtls-e2e init`: every check below follows from the manifests, and each\n\
         # says why it expects what it expects. Edit freely; `mtls-e2e run` on this folder runs it."
    );
    if !set_aside.is_empty() {
        let _ = writeln!(t, "#\n# Set aside (not in the scenario):");
        for s in set_aside {
            let _ = writeln!(t, "#   {}: {}: {}", s.origin, s.what, s.why);
        }
    }
    if !plan.notes.is_empty() {
        let _ = writeln!(t, "#\n# Not derived (write these by hand if they matter):");
        for n in &plan.notes {
            let _ = writeln!(t, "#   {n}");
        }
    }
    t.push('\n');
    if let Some(name) = &plan.name {
        let _ = writeln!(t, "name: {}", scalar(name));
    }
    let _ = writeln!(t, "reproduces: >\n  {}", plan.reproduces);
    let _ = writeln!(
        t,
        "requires:\n  nic: \"{}\"   # {}",
        plan.requires_nic,
        if plan.requires_nic == "5.5" {
            "nginx.org/policies on an Ingress needs NIC 5.5"
        } else {
            "the lowest NIC the scenarios run on"
        }
    );
    let _ = writeln!(t, "\nmanifests:");
    for m in manifests {
        let _ = writeln!(t, "  - {}", scalar(m));
    }
    if !setup.components.is_empty() {
        let _ = writeln!(t, "\ncomponents:");
        for c in &setup.components {
            let _ = writeln!(t, "  # {}", c.why);
            let _ = writeln!(
                t,
                "  - {{name: {}, namespace: {}}}",
                scalar(&c.name),
                scalar(&c.namespace)
            );
        }
    }
    if !setup.steps.is_empty() {
        let _ = writeln!(t, "\nsteps:");
        for s in &setup.steps {
            let _ = writeln!(t, "  # The jq step: {}.", s.why);
            let _ = writeln!(
                t,
                "  - copySecret:\n      from: {}\n      to: {}\n      type: nginx.org/ca\n      data: {{ca.crt: tls.crt}}",
                scalar(&s.from),
                scalar(&s.to)
            );
        }
    }
    if !plan.identities.is_empty() {
        let _ = writeln!(t, "\nidentities:");
        for i in &plan.identities {
            let _ = writeln!(t, "  # {}", i.why);
            let _ = writeln!(t, "  {}: {}", scalar(&i.name), flow(&i.spec));
        }
    }
    if !plan.trust.is_empty() {
        let _ = writeln!(t, "\ntrust:");
        for (name, secret, why) in &plan.trust {
            let _ = writeln!(t, "  # {why}");
            let _ = writeln!(
                t,
                "  {}: {{secret: {}, key: ca.crt}}",
                scalar(name),
                scalar(secret)
            );
        }
    }
    if !plan.states.is_empty() {
        let _ = writeln!(t, "\nresourceStates:");
        for (id, (state, message)) in &plan.states {
            let _ = writeln!(t, "  # NIC: {}", message.replace('\n', " "));
            let _ = writeln!(t, "  {}: {state}", scalar(id));
        }
    }
    let _ = writeln!(t, "\nchecks:");
    for c in &plan.checks {
        t.push('\n');
        for r in c.reasons.iter().skip(1) {
            let _ = writeln!(t, "  # {}", r.replace('\n', " "));
        }
        let _ = writeln!(t, "  - name: {}", scalar(&c.name));
        if let Some(first) = c.reasons.first() {
            let _ = writeln!(t, "    why: {}", scalar(first));
        }
        if !c.after.is_empty() {
            let after: Vec<String> = c.after.iter().map(|a| scalar(a)).collect();
            let _ = writeln!(t, "    after: [{}]", after.join(", "));
        }
        let _ = writeln!(t, "    {}: {}", c.verb.0, scalar(&c.verb.1));
        if let Some(i) = &c.identity {
            let _ = writeln!(t, "    identity: {}", scalar(i));
        }
        match (&c.trust, c.tls) {
            (Some(trust), true) => {
                let _ = writeln!(t, "    trust: {}", scalar(trust));
            }
            (None, true) => {
                let _ = writeln!(t, "    insecure: true");
            }
            _ => {}
        }
        let _ = writeln!(t, "    expect:");
        for (key, value) in &c.expect {
            let _ = writeln!(t, "      {key}: {}", flow(value));
        }
    }
    if !plan.exceptions.is_empty() {
        let _ = writeln!(
            t,
            "\n# Built-in mutations (`mtls-e2e list` shows them all) that no request tells apart:\n\
             # init tried each on its model of this scenario, and every request it makes is\n\
             # answered as without it. `run --mutations` does not run them; each says why."
        );
        let _ = writeln!(t, "skipBuiltinMutations:");
        for e in &plan.exceptions {
            if !e.does.is_empty() {
                let _ = writeln!(t, "  # {}", e.does.replace('\n', " "));
            }
            let _ = writeln!(t, "  - name: {}", scalar(&e.name));
            let _ = writeln!(t, "    why: {}", scalar(&e.why));
        }
    }
    t
}

/// A value on one line: scalars as YAML, collections as JSON (YAML flow).
fn flow(v: &Value) -> String {
    match v {
        Value::Object(map) if !map.is_empty() => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", scalar(k), flow(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
        Value::Array(items) if !items.is_empty() => {
            let inner: Vec<String> = items.iter().map(flow).collect();
            format!("[{}]", inner.join(", "))
        }
        other => inline(other),
    }
}

#[cfg(test)]
mod tests {
    use crate::scenario::spec::ScenarioFile;

    const PKI: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: app}\n---\n\
apiVersion: cert-manager.io/v1\nkind: Issuer\nmetadata: {name: boot, namespace: app}\nspec: {selfSigned: {}}\n---\n\
apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: app-ca, namespace: app}\nspec:\n  isCA: true\n  commonName: app-ca\n  secretName: app-ca\n  privateKey: {algorithm: ECDSA, size: 256}\n  issuerRef: {name: boot, kind: Issuer}\n---\n\
apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: other, namespace: app}\nspec:\n  isCA: true\n  commonName: other\n  secretName: other\n  privateKey: {algorithm: ECDSA, size: 256}\n  issuerRef: {name: boot, kind: Issuer}\n---\n\
apiVersion: cert-manager.io/v1\nkind: Issuer\nmetadata: {name: app-ca, namespace: app}\nspec: {ca: {secretName: app-ca}}\n---\n\
apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: tls, namespace: app}\nspec:\n  secretName: tls\n  dnsNames: [app.example.com]\n  privateKey: {algorithm: ECDSA, size: 256}\n  issuerRef: {name: app-ca, kind: Issuer}\n";

    fn vs(policy: &str) -> String {
        format!(
            "---\napiVersion: k8s.nginx.org/v1\nkind: Policy\nmetadata: {{name: mtls, namespace: app}}\nspec:\n  ingressMTLS: {{{policy}}}\n---\n\
apiVersion: k8s.nginx.org/v1\nkind: VirtualServer\nmetadata: {{name: app, namespace: app}}\nspec:\n  host: app.example.com\n  tls: {{secret: tls}}\n  policies: [{{name: mtls}}]\n  upstreams: [{{name: web, service: open-webui, port: 80}}]\n  routes: [{{path: /, action: {{pass: web}}}}]\n"
        )
    }

    /// The scenario `init` derives for `yaml`, read back as `scenario.yaml`.
    fn derived(yaml: &str) -> (String, ScenarioFile) {
        let objects = crate::manifest::load_text(yaml, std::path::Path::new("in.yaml"), "default")
            .expect("objects");
        let d = super::super::derive(&objects, None, &["in.yaml".into()], &[], "in.yaml")
            .expect("derives");
        let file: ScenarioFile =
            crate::yaml::parse_one(&d.scenario, std::path::Path::new("scenario.yaml"))
                .unwrap_or_else(|e| panic!("{e}\n{}", d.scenario));
        (d.scenario, file)
    }

    fn expected(file: &ScenarioFile, name: &str) -> (Option<u16>, Option<String>) {
        let c = file
            .checks
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| {
                panic!(
                    "no check {name}: {:?}",
                    file.checks.iter().map(|c| &c.name).collect::<Vec<_>>()
                )
            });
        (c.expect.status, c.identity.clone())
    }

    #[test]
    fn verify_client_on_gives_each_identity_its_answer() {
        let (text, file) = derived(&format!(
            "{PKI}{}",
            vs("clientCertSecret: app-ca-nginx, verifyDepth: 1")
        ));
        // The jq step, from the CA whose Secret name begins the wanted one (not `other`).
        let step = file.steps[0].copy_secret.as_ref().expect("copySecret");
        assert_eq!(
            (step.from.as_str(), step.to.as_str()),
            ("app/app-ca", "app/app-ca-nginx")
        );
        assert_eq!(file.components[0].name, "webui");
        assert_eq!(expected(&file, "app-no-cert-400").0, Some(400));
        assert_eq!(
            expected(&file, "app-good-cert-200"),
            (Some(200), Some("client".into()))
        );
        assert_eq!(expected(&file, "app-other-ca-400").0, Some(400));
        assert_eq!(expected(&file, "app-expired-400").0, Some(400));
        assert_eq!(expected(&file, "app-not-yet-valid-400").0, Some(400));
        assert_eq!(expected(&file, "app-via-intermediate-200").0, Some(200));
        let handshake = file
            .checks
            .iter()
            .find(|c| c.name == "app-handshake")
            .expect("handshake");
        assert_eq!(
            handshake.expect.acceptable_ca_names,
            Some(vec!["CN = app-ca".to_string()])
        );
        assert_eq!(handshake.expect.client_cert_requested, Some(true));
        assert!(
            file.checks
                .iter()
                .any(|c| c.name == "app-openssl-names-the-ca" && c.openssl.is_some())
        );
        assert_eq!(expected(&file, "app-plain-http").0, Some(200));
        assert!(
            text.contains("FINDING: port 80 bypasses ingress mTLS"),
            "{text}"
        );
        assert_eq!(file.trust["app-ca"].secret.as_deref(), Some("app/app-ca"));
    }

    #[test]
    fn optional_no_ca_and_depth_zero_follow_nginx() {
        let (_, file) = derived(&format!(
            "{PKI}{}",
            vs("clientCertSecret: app-ca-nginx, verifyClient: optional_no_ca, verifyDepth: 0")
        ));
        assert_eq!(expected(&file, "app-no-cert-200").0, Some(200));
        assert_eq!(
            expected(&file, "app-other-ca-200").0,
            Some(200),
            "an unknown issuer is forgiven"
        );
        assert_eq!(
            expected(&file, "app-expired-400").0,
            Some(400),
            "expiry is not"
        );
        assert_eq!(
            expected(&file, "app-via-intermediate-400").0,
            Some(400),
            "depth 0 allows no intermediate"
        );
    }

    #[test]
    fn a_missing_ca_secret_nobody_can_make_is_noted_and_nic_answers_500() {
        // app-ca is the CA of app-ca-nginx (by name), so it is not guessed for not-a-ca.
        let claims = "---\napiVersion: k8s.nginx.org/v1\nkind: Policy\nmetadata: {name: claims, namespace: app}\nspec: {ingressMTLS: {clientCertSecret: app-ca-nginx}}\n";
        let (text, file) = derived(&format!(
            "{PKI}{claims}{}",
            vs("clientCertSecret: not-a-ca")
        ));
        assert!(file.steps.iter().all(|s| {
            s.copy_secret
                .as_ref()
                .is_some_and(|c| c.to == "app/app-ca-nginx")
        }));
        assert!(
            text.contains("Secret app/not-a-ca is not in the manifests"),
            "{text}"
        );
        assert_eq!(file.resource_states["VirtualServer app/app"], "Warning");
        assert_eq!(expected(&file, "app-https").0, Some(500));
        assert_eq!(expected(&file, "app-plain-http").0, Some(500));
    }

    use super::super::testing::{derived as derived_from, manifests_of};
    use crate::manifest::Object;
    use crate::scenario::spec::CheckSpec;

    /// The first check that GETs `url` as `identity`, alone (or after `after`).
    fn get<'a>(
        file: &'a ScenarioFile,
        url: &str,
        identity: Option<&str>,
        after: &[&str],
    ) -> &'a CheckSpec {
        file.checks
            .iter()
            .find(|c| {
                c.get.as_deref() == Some(url)
                    && c.identity.as_deref() == identity
                    && c.after.iter().map(String::as_str).eq(after.iter().copied())
            })
            .unwrap_or_else(|| {
                panic!(
                    "no check of {url} as {identity:?} after {after:?}: {:?}",
                    file.checks
                        .iter()
                        .map(|c| (&c.name, &c.get, &c.identity, &c.after))
                        .collect::<Vec<_>>()
                )
            })
    }

    /// `objects` with `patch` merged into the object `id` (`Kind ns/name`).
    fn patched(mut objects: Vec<Object>, id: &str, patch: &serde_json::Value) -> Vec<Object> {
        let slot = objects
            .iter_mut()
            .find(|o| o.id.to_string() == id)
            .unwrap_or_else(|| panic!("no {id}"));
        let mut json = slot.to_json();
        crate::manifest::merge_patch(&mut json, patch);
        *slot = slot.with_json(&json).expect("valid");
        objects
    }

    #[test]
    fn each_client_certificate_of_the_manifests_gets_its_own_check() {
        let (_, file) = derived_from(&manifests_of("openwebui-ingress-mtls"));
        assert_eq!(
            file.identities["open-webui-client-2"].secret.as_deref(),
            Some("open-webui/open-webui-client-2")
        );
        let second = get(
            &file,
            "https://open-webui.example.com/",
            Some("open-webui-client-2"),
            &[],
        );
        assert_eq!(second.expect.status, Some(200));
    }

    #[test]
    fn access_control_on_documentation_addresses_is_predicted() {
        let (_, file) = derived_from(&manifests_of("access-control"));
        // The route's allow-list names only 192.0.2.10: 403, good certificate or not.
        let api = get(
            &file,
            "https://webui.acl.example.com/api/config",
            Some("client"),
            &[],
        );
        assert_eq!(api.expect.status, Some(403));
        // The server's deny-list names only 192.0.2.0/24: the good certificate gets through.
        assert_eq!(
            expected(&file, "webui-good-cert-200"),
            (Some(200), Some("client".into()))
        );
        // An address a client may have: no prediction, but a note.
        let acl = "---\napiVersion: k8s.nginx.org/v1\nkind: Policy\nmetadata: {name: acl, namespace: app}\nspec: {accessControl: {deny: [10.0.0.0/8]}}\n";
        let (text, file) = derived(&format!(
            "{PKI}{}{acl}",
            vs("clientCertSecret: app-ca-nginx").replace(
                "policies: [{name: mtls}]",
                "policies: [{name: mtls}, {name: acl}]"
            )
        ));
        assert!(
            text.contains("accessControl `deny 10.0.0.0/8` decides by the client's address"),
            "{text}"
        );
        assert!(!file.checks.iter().any(|c| c.name == "app-good-cert-200"));
    }

    #[test]
    fn a_failing_route_sent_after_a_good_one_on_its_upstream_resumes_that_session() {
        let (text, file) = derived_from(&manifests_of("egress-mtls-traps"));
        let url = "http://shared.example.com/wrong-ca/v1/models";
        let alone = get(&file, url, None, &[]);
        assert_eq!(alone.expect.status, Some(502));
        let masked = get(&file, url, None, &["shared-good"]);
        assert_eq!(masked.expect.status, Some(200));
        assert!(
            text.contains("FINDING: alone, location `/wrong-ca/`"),
            "{text}"
        );
        // In a group, checks run in the scenario's order: alone first, then the good one, then after it.
        let at = |name: &str| file.checks.iter().position(|c| c.name == name);
        assert!(at(&alone.name) < at("shared-good") && at("shared-good") < at(&masked.name));
        // sessionReuse false: no session to resume.
        assert!(file.checks.iter().all(|c| {
            c.get.as_deref() != Some("http://shared.example.com/wrong-ca-no-reuse/v1/models")
                || c.after.is_empty()
        }));
    }

    /// The status and why `init` predicts for `url` once `object` of
    /// egress-mtls-traps is patched with `patch`.
    fn predicted_after_patch(
        object: &str,
        patch: &serde_json::Value,
        url: &str,
    ) -> (Option<u16>, String) {
        let objects = patched(manifests_of("egress-mtls-traps"), object, patch);
        let (_, file) = derived_from(&objects);
        let check = get(&file, url, None, &[]);
        (check.expect.status, check.why.clone().unwrap_or_default())
    }

    #[test]
    fn the_upstream_exchange_fails_where_it_first_fails() {
        // Without TLS server auth in its usages, NGINX's verification refuses the gateway.
        let (status, why) = predicted_after_patch(
            "Certificate gateway/aigw-server-tls",
            &serde_json::json!({"spec": {"usages": ["digital signature", "key encipherment", "client auth"]}}),
            "http://good.example.com/v1/models",
        );
        assert_eq!(status, Some(502));
        assert!(why.contains("not TLS Web Server Authentication"), "{why}");
        // NGINX refuses the gateway's certificate before the gateway could refuse its missing one.
        let (_, why) = predicted_after_patch(
            "Policy gateway/egress-wrong-ca",
            &serde_json::json!({"spec": {"egressMTLS": {"tlsSecret": null}}}),
            "http://wrong-ca.example.com/v1/models",
        );
        assert!(why.contains("the trusted CA Secret does not hold"), "{why}");
        // And a client certificate not for client authentication is the gateway's refusal.
        let (status, why) = predicted_after_patch(
            "Certificate gateway/nic-client",
            &serde_json::json!({"spec": {"usages": ["digital signature", "key encipherment", "server auth"]}}),
            "http://good.example.com/v1/models",
        );
        assert_eq!(status, Some(502));
        assert!(
            why.contains("the gateway refuses NGINX's client certificate"),
            "{why}"
        );
    }

    #[test]
    fn a_ca_bundle_a_pod_mounts_comes_from_the_ca_of_the_client_certificates_nginx_presents_it() {
        let (_, file) = derived_from(&manifests_of("egress-without-verification"));
        let step = file
            .steps
            .iter()
            .filter_map(|s| s.copy_secret.as_ref())
            .find(|c| c.to == "noverify/internal-ca")
            .expect("a jq step for the gateway's client CA");
        assert_eq!(step.from, "noverify/gateway-ca", "not the impostor's CA");
        // So the unverifying route reaches the impostor gateway: the finding.
        let impostor = get(
            &file,
            "http://no-verify.noverify.example.com/v1/models",
            None,
            &[],
        );
        assert_eq!(impostor.expect.status, Some(200));
    }
}
