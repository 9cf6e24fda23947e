//! The built-in mutations `run --mutations` will apply to the scenario `init`
//! writes (the run's own derivation, `scenario::builtin_mutations`), each
//! tried on init's model of the world: the mutated objects rendered as NIC
//! renders them (the certificates issued again when a Certificate changes),
//! then every request init knows how to make predicted again. One that NIC
//! renders alike, or that changes a resource's state, the run decides itself;
//! one that changes no answer is one no request can tell apart, and init
//! declares it under `skipBuiltinMutations`, naming the requests it reaches
//! and what they get either way.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::Value;

use super::checks::{self, Answer, Client, Stage};
use super::world::{self, Setup, World};
use crate::manifest::{Kind, Object};
use crate::scenario::spec::MutationSpec;
use crate::substrate::local::nic::routing::Route;

/// A built-in mutation no request tells apart.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Exception {
    pub name: String,
    /// What the mutation does.
    pub does: String,
    /// Why no request tells it apart.
    pub why: String,
}

/// One request init can make.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Request {
    host: String,
    tls: bool,
    path: String,
    /// Sent right after a request to this path, which left its TLS session behind.
    after: Option<String>,
    /// Index into the clients.
    client: usize,
}

/// What a request gets, as a check compares it, and why.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    /// `None`: init makes no prediction.
    outcome: Option<String>,
    /// The status, or `None` for a refused handshake.
    status: Option<u16>,
    why: String,
    /// Where it is decided.
    stage: Stage,
    route: Option<Route>,
}

/// Every client certificate init presents, with what to call it.
fn clients(world: &World) -> Vec<(String, Client)> {
    let mut out = vec![("no client certificate".to_string(), Client::None)];
    let mut cas: Vec<String> = Vec::new();
    for (host, _) in checks::hosts(world) {
        for ca in checks::client_cas(world, &host) {
            if !cas.contains(&ca) {
                cas.push(ca);
            }
        }
    }
    for ca in &cas {
        for secret in world.clients_of(ca) {
            out.push((
                format!("Secret {secret}'s client certificate"),
                Client::Good {
                    ca: ca.clone(),
                    secret: Some(secret),
                },
            ));
        }
        if world.signer_of(ca).is_some() {
            out.push((
                format!("a client certificate from `{ca}`"),
                Client::Good {
                    ca: ca.clone(),
                    secret: None,
                },
            ));
        }
    }
    out.extend([
        ("a certificate from another CA".into(), Client::OtherCa),
        ("an expired certificate".into(), Client::Expired),
        ("a not yet valid certificate".into(), Client::NotYetValid),
        (
            "a certificate through an intermediate CA".into(),
            Client::ViaIntermediate,
        ),
    ]);
    out
}

/// The paths init probes on each host, in either world: one per location, and `/`.
fn paths(worlds: &[&World]) -> BTreeMap<(String, bool), BTreeSet<String>> {
    let mut out: BTreeMap<(String, bool), BTreeSet<String>> = BTreeMap::new();
    for w in worlds {
        for (host, _) in checks::hosts(w) {
            for tls in [false, true] {
                let entry = out.entry((host.clone(), tls)).or_default();
                entry.insert("/".into());
                for location in w.routing.locations(&host, tls) {
                    if let Some(p) = checks::probe_path(w, &host, tls, &location) {
                        entry.insert(p);
                    }
                }
            }
        }
    }
    out
}

fn seen(answer: &Answer, route: Option<Route>) -> Seen {
    let (outcome, status, why, stage) = match answer {
        Answer::Http {
            status,
            expect,
            why,
            stage,
            ..
        } => (
            Some(format!("{status} {expect:?}")),
            Some(*status),
            why.clone(),
            *stage,
        ),
        Answer::Rejected { alert, why } => (
            Some(format!("refused: {alert}")),
            None,
            why.clone(),
            Stage::Server,
        ),
        Answer::Unknown(why) => (None, None, why.clone(), Stage::Upstream),
    };
    Seen {
        outcome,
        status,
        why,
        stage,
        route,
    }
}

/// The first stage at which two routes of one request differ (over `tls` or
/// plain HTTP, which verifies no client).
fn changed_at(a: Option<&Route>, b: Option<&Route>, tls: bool) -> Option<Stage> {
    let (a, b) = match (a, b) {
        (None, None) => return None,
        (Some(a), Some(b)) => (a, b),
        _ => return Some(Stage::Server),
    };
    // What NGINX sends upstream matters only over TLS.
    let egress = |r: &Route| {
        r.egress.as_ref().map(|e| {
            (
                e.upstream.clone(),
                e.tls,
                e.tls.then(|| (e.session_reuse, e.ssl_settings.clone())),
            )
        })
    };
    if a.server != b.server || a.location != b.location {
        Some(Stage::Server)
    } else if tls
        && (a.server_rules.reject_handshake != b.server_rules.reject_handshake
            || a.server_rules.ssl_settings != b.server_rules.ssl_settings)
    {
        Some(Stage::Verification)
    } else if a.server_rules.returns != b.server_rules.returns
        || a.location_rules.returns != b.location_rules.returns
    {
        Some(Stage::Rewrite)
    } else if checks::effective_access(a) != checks::effective_access(b) {
        Some(Stage::Access)
    } else if egress(a) != egress(b) || a.location_rules.proxy_uri != b.location_rules.proxy_uri {
        Some(Stage::Upstream)
    } else {
        None
    }
}

/// Every request init makes: each client to each path of each host, alone
/// and right after a request to each other path there. A client certificate
/// is presented only where a host asks for one (`verifying`); elsewhere every
/// client is answered as the one without.
fn requests(
    paths: &BTreeMap<(String, bool), BTreeSet<String>>,
    clients: usize,
    verifying: &BTreeSet<String>,
) -> Vec<Request> {
    let mut out = Vec::new();
    for ((host, tls), on_host) in paths {
        let presented = if *tls && verifying.contains(host) {
            clients
        } else {
            1
        };
        for client in 0..presented {
            for path in on_host {
                let request = |after: Option<&String>| Request {
                    host: host.clone(),
                    tls: *tls,
                    path: path.clone(),
                    after: after.cloned(),
                    client,
                };
                out.push(request(None));
                out.extend(
                    on_host
                        .iter()
                        .filter(|p| *p != path)
                        .map(|p| request(Some(p))),
                );
            }
        }
    }
    out
}

/// What `request` gets in `world`.
fn answer(world: &World, request: &Request, clients: &[(String, Client)]) -> Seen {
    let (host, tls, path) = (request.host.as_str(), request.tls, request.path.as_str());
    let cas = checks::client_cas(world, host);
    let client = &clients[request.client].1;
    let session = request
        .after
        .as_ref()
        .and_then(|first| checks::session_of(world, host, tls, first, client, &cas));
    let answer = checks::predict_after(world, host, tls, path, client, &cas, session.as_ref());
    seen(&answer, world.routing.route(host, tls, path))
}

/// What a TLS handshake shows a probe, per host: whether a certificate is
/// asked for, the CA names, and the server certificate as a verifying client
/// judges it.
fn handshakes(world: &World, hosts: &BTreeSet<String>) -> BTreeMap<String, String> {
    hosts
        .iter()
        .map(|host| {
            let server = checks::server_cert(world, host).map(|c| {
                (
                    c.issuer.clone(),
                    checks::names_host(&c, host),
                    checks::allows(&c, checks::SERVER_AUTH),
                )
            });
            let shown = format!(
                "{:?} {:?} {:?} {:?}",
                checks::served(world, host),
                checks::verify_mode(world, host).is_some(),
                checks::client_cas(world, host),
                server
            );
            (host.clone(), shown)
        })
        .collect()
}

fn states(world: &World) -> BTreeSet<(String, String)> {
    world
        .nic
        .states
        .iter()
        .map(|s| (s.id(), s.state.to_string()))
        .collect()
}

/// The world with the mutation applied, as the mutated run will have it.
fn mutated(
    objects: &[Object],
    setup: &Setup,
    base: &World,
    mutation: &MutationSpec,
) -> Option<(World, Object)> {
    let object = objects
        .iter()
        .find(|o| o.id.to_string() == mutation.patch.object)?;
    let mut json = object.to_json();
    crate::manifest::merge_patch(&mut json, &mutation.patch.merge);
    let changed = object.with_json(&json).ok()?;
    let world = if crate::substrate::local::read_by_nic_only(changed.id.kind) {
        base.rerendered(&changed).ok()?
    } else {
        let patched: Vec<Object> = objects
            .iter()
            .map(|o| {
                if o.id == changed.id {
                    changed.clone()
                } else {
                    o.clone()
                }
            })
            .collect();
        world::build(&patched, setup).ok()?
    };
    Some((world, changed))
}

/// The Secret a Certificate writes, `ns/name`.
fn written_secret(object: &Object) -> Option<String> {
    (object.id.kind == Kind::Certificate).then_some(())?;
    let c = object.parse::<crate::manifest::kinds::Certificate>().ok()?;
    Some(format!("{}/{}", object.namespace(), c.spec.secret_name))
}

/// At most this many requests are named in a reason.
const SHOWN: usize = 3;

/// The scenario's world, with what init predicts there, kept across mutations.
struct Base<'a> {
    world: &'a World,
    clients: Vec<(String, Client)>,
    seen: BTreeMap<Request, Seen>,
}

/// The exception for `mutation`, if no request tells it apart.
fn exception(
    objects: &[Object],
    setup: &Setup,
    base: &mut Base<'_>,
    mutation: &MutationSpec,
) -> Option<Exception> {
    let (after, changed) = mutated(objects, setup, base.world, mutation)?;
    // The run finds these itself: equivalent, or killed by a state.
    if crate::substrate::local::renders_alike(&base.world.nic, &after.nic)
        || states(base.world) != states(&after)
    {
        return None;
    }
    let paths = paths(&[base.world, &after]);
    let hosts: BTreeSet<String> = paths.keys().map(|(h, _)| h.clone()).collect();
    if handshakes(base.world, &hosts) != handshakes(&after, &hosts) {
        return None;
    }
    let verifying: BTreeSet<String> = hosts
        .iter()
        .filter(|h| {
            checks::verify_mode(base.world, h).is_some() || checks::verify_mode(&after, h).is_some()
        })
        .cloned()
        .collect();
    let mut before = BTreeMap::new();
    let mut now = BTreeMap::new();
    for request in requests(&paths, base.clients.len(), &verifying) {
        let (world, clients) = (base.world, &base.clients);
        let was = base
            .seen
            .entry(request.clone())
            .or_insert_with(|| answer(world, &request, clients))
            .clone();
        let is = answer(&after, &request, &base.clients);
        let told_apart =
            was.outcome != is.outcome || (was.outcome.is_none() && was.route != is.route);
        if told_apart {
            return None;
        }
        before.insert(request.clone(), was);
        now.insert(request, is);
    }
    let secret = written_secret(&changed);
    let why = reason(
        &before,
        &now,
        &base.clients,
        base.world,
        secret.as_deref(),
        mutation,
    );
    Some(Exception {
        name: mutation.name.clone(),
        does: mutation.why.clone().unwrap_or_default(),
        why,
    })
}

/// One request near what a mutation changes, and what it gets.
struct Reached {
    /// The URL, who sends it, and after what.
    label: String,
    fresh: bool,
    url_who: String,
    /// (answer, why without it, why with it).
    group: (String, String, String),
}

/// How a request relates to what a mutation changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Near {
    /// It gets there: its route differs where it is decided (or before), its
    /// why differs, or it uses the Secret a changed Certificate writes.
    Reaches,
    /// Its route differs, but it is decided before it gets there.
    DecidedBefore,
    /// Only `proxy_ssl_*` settings of a location that speaks plain HTTP upstream differ.
    Inert,
}

/// Why no request tells the mutation apart, in plain words from what init
/// predicts: the requests that reach what it changes, grouped by what they
/// get without it and with it.
fn reason(
    before: &BTreeMap<Request, Seen>,
    now: &BTreeMap<Request, Seen>,
    clients: &[(String, Client)],
    base: &World,
    secret: Option<&str>,
    mutation: &MutationSpec,
) -> String {
    let mut near: BTreeMap<Near, Vec<Reached>> = BTreeMap::new();
    for (request, seen) in before {
        let Some(other) = now.get(request) else {
            continue;
        };
        let (name, client) = &clients[request.client];
        // One client per request: a good one where the host verifies clients, none elsewhere.
        let verifies = request.tls && checks::verify_mode(base, &request.host).is_some();
        let first_good = clients
            .iter()
            .position(|(_, c)| matches!(c, Client::Good { .. }));
        let wanted = if verifies {
            first_good == Some(request.client)
        } else {
            *client == Client::None
        };
        if !wanted {
            continue;
        }
        let changed = changed_at(seen.route.as_ref(), other.route.as_ref(), request.tls);
        let touches = secret.is_some_and(|s| {
            checks::touches(base, &request.host, request.tls, &request.path, client, s)
        });
        let kind = if seen.why != other.why || touches || changed.is_some_and(|c| c <= seen.stage) {
            Near::Reaches
        } else if changed.is_some() {
            Near::DecidedBefore
        } else if seen.route != other.route {
            Near::Inert
        } else {
            continue;
        };
        let scheme = if request.tls { "https" } else { "http" };
        let who = if *client == Client::None {
            String::new()
        } else {
            format!(" (with {name})")
        };
        let url_who = format!("{scheme}://{}{}{who}", request.host, request.path);
        let label = match &request.after {
            Some(first) => format!("{url_who} right after {scheme}://{}{first}", request.host),
            None => url_who.clone(),
        };
        let answer = match seen.status {
            Some(status) => format!("answer {status}"),
            None => "refuse the handshake".into(),
        };
        near.entry(kind).or_default().push(Reached {
            label,
            fresh: request.after.is_none(),
            url_who,
            group: (answer, seen.why.clone(), other.why.clone()),
        });
    }
    let mut why = match near.into_iter().next() {
        // A Certificate's Secret that no request uses.
        None if secret.is_some() => {
            "No request init makes uses what it changes: each is answered as without it."
                .to_string()
        }
        None => "NIC renders it otherwise, yet every location keeps the same effective settings \
                 (nginx takes what a location leaves unset from its server, which sets the same), \
                 so every request init makes is answered as without it."
            .to_string(),
        Some((Near::Inert, reached)) => format!(
            "It changes only proxy_ssl settings of locations that speak plain HTTP to their upstream \
             ({}), which NGINX does not use there: every request init makes is answered as without it.",
            list(&labels(&reached))
        ),
        Some((kind, reached)) => told(kind, reached),
    };
    if let Some(depth) = mutation
        .patch
        .merge
        .pointer("/spec/ingressMTLS/verifyDepth")
        .and_then(Value::as_i64)
    {
        let _ = write!(
            why,
            " verifyDepth {} and {depth} differ only for a chain of {} intermediate CAs, and the identities the harness issues carry at most one (viaIntermediate).",
            depth + 1,
            depth + 1
        );
    }
    why
}

/// The requests that reach what a mutation changes, and what they get, in words.
fn told(kind: Near, reached: Vec<Reached>) -> String {
    let groups = grouped(reached);
    let shown: Vec<String> = groups
        .iter()
        .take(SHOWN)
        .map(|((answer, without, with), labels)| {
            let who = list(labels);
            let verb = if labels.len() == 1 {
                answer
                    .replacen("answer ", "answers ", 1)
                    .replacen("refuse ", "refuses ", 1)
            } else {
                answer.clone()
            };
            if without == with {
                format!("{who} {verb} either way: {without}")
            } else {
                format!("{who} {verb} without it ({without}) and with it ({with})")
            }
        })
        .collect();
    let lead = if kind == Near::Reaches {
        "No request tells it apart"
    } else {
        "Every request that gets to what it changes is decided before it is reached"
    };
    let mut text = format!("{lead}: {}", shown.join("; "));
    if groups.len() > SHOWN {
        let _ = write!(text, "; and {} more, likewise", groups.len() - SHOWN);
    }
    text.push('.');
    text
}

fn labels(reached: &[Reached]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in reached.iter().filter(|r| r.fresh) {
        if !out.contains(&r.url_who) {
            out.push(r.url_who.clone());
        }
    }
    out
}

/// The requests by what they get; one right after another is left out when
/// alone it gets the same answer.
fn grouped(mut reached: Vec<Reached>) -> Vec<((String, String, String), Vec<String>)> {
    let said: BTreeSet<(String, String)> = reached
        .iter()
        .filter(|r| r.fresh)
        .map(|r| (r.url_who.clone(), r.group.0.clone()))
        .collect();
    reached.retain(|r| r.fresh || !said.contains(&(r.url_who.clone(), r.group.0.clone())));
    let mut groups: Vec<((String, String, String), Vec<String>)> = Vec::new();
    for r in reached {
        match groups.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, labels)) if !labels.contains(&r.label) => labels.push(r.label),
            Some(_) => {}
            None => groups.push((r.group, vec![r.label])),
        }
    }
    groups
}

/// `a`, `a and b`, `a, b and 2 more`.
fn list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [a, b] => format!("{a} and {b}"),
        [a, b, rest @ ..] if rest.len() == 1 => format!("{a}, {b} and {}", rest[0]),
        [a, b, rest @ ..] => format!("{a}, {b} and {} more", rest.len()),
    }
}

/// The exceptions among `mutations`, in their order. `objects` are the
/// manifests' (the ones a mutation patches).
pub(crate) fn exceptions(
    objects: &[Object],
    setup: &Setup,
    base: &World,
    mutations: &[MutationSpec],
) -> Vec<Exception> {
    let mut base = Base {
        world: base,
        clients: clients(base),
        seen: BTreeMap::new(),
    };
    mutations
        .iter()
        .filter_map(|m| exception(objects, setup, &mut base, m))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::testing::{derived, manifests_of};
    use crate::scenario::spec::ScenarioFile;

    /// The `skipBuiltinMutations` init writes for a shipped scenario's manifests.
    fn excepted(scenario: &str) -> ScenarioFile {
        derived(&manifests_of(scenario)).1
    }

    fn why<'a>(file: &'a ScenarioFile, name: &str) -> Option<&'a str> {
        file.skip_builtin_mutations
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.why.as_str())
    }

    #[test]
    fn a_second_fault_on_a_route_that_fails_by_design_is_excepted_with_what_it_gets() {
        let file = excepted("egress-mtls-traps");
        let without_tls13 = why(
            &file,
            "builtin/ssl-name-changed/gateway/egress-default-protocols",
        )
        .expect("excepted");
        assert!(
            without_tls13.contains("http://default-protocols.example.com/v1/models")
                && without_tls13.contains("answer 502 either way")
                && without_tls13.contains("the gateway speaks TLS 1.3 only"),
            "{without_tls13}"
        );
        // Another failure, the same 502: both reasons named.
        let dropped = why(
            &file,
            "builtin/route-policy-dropped/gateway/wrong-ca/egress-wrong-ca@/",
        )
        .expect("excepted");
        assert!(
            dropped.contains("without it (") && dropped.contains("NGINX presents none"),
            "{dropped}"
        );
        // What a request can tell apart is never excepted: the good route's
        // answer, and the session the wrong-CA route resumes after it (a name
        // NGINX checks even then, TLS 1.3 the session needs).
        for told_apart in [
            "builtin/tls13-removed/gateway/egress-good",
            "builtin/trusted-ca-swapped/gateway/egress-wrong-ca",
            "builtin/ssl-name-changed/gateway/egress-wrong-ca",
            "builtin/tls13-removed/gateway/egress-wrong-ca",
            "builtin/route-policy-dropped/gateway/shared-upstream/egress-wrong-ca@/wrong-ca/",
        ] {
            assert_eq!(why(&file, told_apart), None, "{told_apart}");
        }
        // The session carries the client identity: dropping the certificate changes nothing.
        let resumed =
            why(&file, "builtin/client-cert-dropped/gateway/egress-wrong-ca").expect("excepted");
        assert!(resumed.contains("right after"), "{resumed}");
    }

    #[test]
    fn a_deny_list_of_documentation_addresses_is_excepted_an_allow_list_is_not() {
        let file = excepted("access-control");
        let deny = why(&file, "builtin/policy-dropped/acl/webui/deny-test-net").expect("excepted");
        assert!(
            deny.contains("`deny 192.0.2.0/24` names only documentation addresses"),
            "{deny}"
        );
        assert_eq!(
            why(
                &file,
                "builtin/route-policy-dropped/acl/webui/admins-only@/api/config"
            ),
            None,
            "without the allow-list the route answers 200, not 403"
        );
        assert_eq!(file.skip_builtin_mutations.len(), 1);
    }

    #[test]
    fn verify_depth_two_lowered_is_excepted_for_the_chains_the_harness_issues() {
        let file = excepted("client-verification");
        let depth = why(&file, "builtin/verify-depth-lowered/verify/depth-2").expect("excepted");
        assert!(
            depth.contains("verifyDepth 2 and 1 differ only for a chain of 2 intermediate CAs"),
            "{depth}"
        );
        // From 1 to 0 the one intermediate is refused: told apart.
        let file = excepted("openwebui-ingress-mtls");
        assert!(file.skip_builtin_mutations.is_empty());
    }

    #[test]
    fn a_certificate_usage_is_excepted_only_where_nothing_judges_it() {
        let file = excepted("egress-without-verification");
        let server = why(
            &file,
            "builtin/server-auth-dropped/noverify/aigw-server-tls",
        )
        .expect("excepted");
        assert!(
            server.contains("proxy_ssl_verify off: it does not check the gateway's certificate")
                && server.contains("`CN = impostor-ca`, which the trusted CA Secret does not hold"),
            "{server}"
        );
        // The gateway judges NGINX's client certificate on the route that reaches it.
        assert_eq!(
            why(&file, "builtin/client-auth-dropped/noverify/nic-client"),
            None
        );
    }

    #[test]
    fn settings_a_location_inherits_or_does_not_use_are_named() {
        let file = excepted("ingress-mergeable");
        let inherited =
            why(&file, "builtin/client-cert-dropped/merge/minion-egress").expect("excepted");
        assert!(inherited.contains("same effective settings"), "{inherited}");
        let file = excepted("ingress-egress-mtls");
        let inert = why(
            &file,
            "builtin/annotation-policy-dropped/webapp/webapp-ingress-no-ssl-services/egress-mtls-policy-tls13",
        )
        .expect("excepted");
        assert!(
            inert.contains("speak plain HTTP to their upstream (http://webapp-plain.example.com/"),
            "{inert}"
        );
    }

    #[test]
    fn a_change_past_where_every_request_is_decided_is_excepted_saying_where() {
        // The gateway's CA Secrets come from openssl steps init cannot write:
        // NIC answers `return 500` in the location, before any proxying.
        let file = excepted("aigw-egress-mtls");
        let plain =
            why(&file, "builtin/upstream-tls-off/ai-gateway/aigw-mtls/aigw").expect("excepted");
        assert!(
            plain.starts_with(
                "Every request that gets to what it changes is decided before it is reached"
            ) && plain.contains(
                "http://aigw.example.com/ answers 500 either way: the location's `return 500`"
            ),
            "{plain}"
        );
        // Without its policy the route proxies: told apart.
        assert_eq!(
            why(
                &file,
                "builtin/route-policy-dropped/ai-gateway/aigw-mtls/aigw-mtls@/"
            ),
            None
        );
    }

    #[test]
    fn lists_read_as_sentences() {
        let items = |n: usize| (1..=n).map(|i| i.to_string()).collect::<Vec<_>>();
        assert_eq!(super::list(&items(1)), "1");
        assert_eq!(super::list(&items(2)), "1 and 2");
        assert_eq!(super::list(&items(3)), "1, 2 and 3");
        assert_eq!(super::list(&items(5)), "1, 2 and 3 more");
    }
}
