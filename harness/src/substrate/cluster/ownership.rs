//! What a run may touch on a cluster: only what it made. Every object a run
//! applies carries our labels; an object that exists without them is someone
//! else's. A Namespace that already exists is reused and never deleted (it may
//! hold anything: `cert-manager`, a tutorial someone runs); any other object
//! that exists and is not ours stops the run before anything is applied,
//! unless the user adopts it by name (`--adopt`): then it is applied as the
//! scenario says, without our label, and never deleted.
//! Teardown deletes only objects carrying our label. The decisions are pure
//! functions of what was observed, so they are tested without a cluster.

use serde_json::Value;

use crate::manifest::{Kind, ObjectRef};

/// The label every object of ours carries, and its value.
pub(crate) const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub(crate) const MANAGER: &str = "mtls-e2e";
/// The run that applied it.
pub(crate) const RUN: &str = "mtls-e2e.io/run";

/// What the cluster holds under an object's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Observed {
    Absent,
    /// It carries our label (this run's, or one that died).
    Ours,
    /// It exists and we did not make it.
    Foreign,
}

/// Read an object the API server returned (or none).
pub(crate) fn observe(existing: Option<&Value>) -> Observed {
    match existing {
        None => Observed::Absent,
        Some(o) => {
            let label = o
                .pointer("/metadata/labels")
                .and_then(|l| l.get(MANAGED_BY))
                .and_then(Value::as_str);
            if label == Some(MANAGER) {
                Observed::Ours
            } else {
                Observed::Foreign
            }
        }
    }
}

/// Add our labels to a manifest about to be applied.
pub(crate) fn label(json: &mut Value, run: &str) {
    if let Some(meta) = json.get_mut("metadata").and_then(Value::as_object_mut) {
        let labels = meta
            .entry("labels")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(labels) = labels.as_object_mut() {
            labels.insert(MANAGED_BY.into(), Value::String(MANAGER.into()));
            labels.insert(RUN.into(), Value::String(run.into()));
        }
    }
}

/// What a run will do with each object of a scenario.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Decision {
    /// Applied by the run (absent, or left by a run of ours).
    pub apply: Vec<ObjectRef>,
    /// Namespaces that exist and are not ours: used, never applied or deleted.
    pub reuse: Vec<String>,
    /// Objects that exist, are not ours, and the user adopted: applied
    /// without our label (so never deleted).
    pub adopted: Vec<ObjectRef>,
    /// Objects that exist, are not ours, and would be overwritten: the run stops.
    pub conflicts: Vec<String>,
}

pub(crate) fn decide(observed: &[(ObjectRef, Observed)], adopt: &[ObjectRef]) -> Decision {
    let mut d = Decision::default();
    for (id, seen) in observed {
        match (id.kind, seen) {
            (Kind::Namespace, Observed::Foreign) => d.reuse.push(id.name.clone()),
            (_, Observed::Foreign) if adopt.contains(id) => d.adopted.push(id.clone()),
            (_, Observed::Foreign) => d.conflicts.push(format!(
                "{id} already exists and was not made by mtls-e2e (no {MANAGED_BY}={MANAGER} label): \
                 the run would overwrite it and delete it afterwards. Delete it yourself, give the \
                 scenario another name or namespace, or let the run overwrite it and keep it with \
                 --adopt {}",
                adopt_arg(id)
            )),
            _ => d.apply.push(id.clone()),
        }
    }
    d
}

/// How `--adopt` names an object: `Kind/name` (cluster-scoped) or
/// `Kind/namespace/name`.
pub(crate) fn adopt_arg(id: &ObjectRef) -> String {
    match &id.namespace {
        Some(ns) => format!("{}/{ns}/{}", id.kind, id.name),
        None => format!("{}/{}", id.kind, id.name),
    }
}

/// Read one `--adopt` value.
pub(crate) fn parse_adopt(arg: &str) -> Result<ObjectRef, String> {
    let parts: Vec<&str> = arg.split('/').collect();
    let usage = || {
        format!(
            "--adopt {arg}: name an object as Kind/name (cluster-scoped) or Kind/namespace/name, \
             e.g. --adopt ClusterIssuer/selfsigned-issuer or --adopt Secret/open-webui/ca-secret"
        )
    };
    let kind = parts
        .first()
        .and_then(|k| Kind::from_name(k))
        .ok_or_else(|| {
            let kinds: Vec<&str> = Kind::ALL.iter().map(Kind::name).collect();
            format!("{}; kinds: {}", usage(), kinds.join(", "))
        })?;
    let (namespace, name) = match (kind.namespaced(), parts.as_slice()) {
        (true, [_, ns, name]) => (*ns, *name),
        (false, [_, name]) => ("", *name),
        _ => return Err(usage()),
    };
    if name.is_empty() || (kind.namespaced() && namespace.is_empty()) {
        return Err(usage());
    }
    Ok(ObjectRef::new(kind, namespace, name))
}

/// Every adopted object must be one the scenarios declare: a typo would
/// otherwise adopt nothing and the run would stop on the conflict anyway.
pub(crate) fn check_adopt(
    adopt: &[ObjectRef],
    mut declared: impl FnMut(&ObjectRef) -> bool,
) -> Result<(), String> {
    match adopt.iter().find(|id| !declared(id)) {
        Some(id) => Err(format!(
            "--adopt {}: no scenario of this run declares {id}",
            adopt_arg(id)
        )),
        None => Ok(()),
    }
}

/// What teardown deletes: objects that carry our label, except the contents
/// of a namespace we delete anyway. Foreign objects are never deleted.
pub(crate) fn deletable(observed: &[(ObjectRef, Observed)]) -> Vec<ObjectRef> {
    let ours = |ns: &str| {
        observed.iter().any(|(id, seen)| {
            id.kind == Kind::Namespace && id.name == ns && *seen == Observed::Ours
        })
    };
    observed
        .iter()
        .filter(|(_, seen)| *seen == Observed::Ours)
        .filter(|(id, _)| match &id.namespace {
            // Inside a namespace of ours, deleting the namespace deletes it.
            Some(ns) => !ours(ns),
            None => true,
        })
        .map(|(id, _)| id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(name: &str) -> ObjectRef {
        ObjectRef::new(Kind::Namespace, "", name)
    }

    /// The outside tester's case: a cluster already running the tutorial.
    #[test]
    fn a_run_touches_only_what_it_made() {
        let user_ns = ns("open-webui");
        let user_issuer = ObjectRef::new(Kind::ClusterIssuer, "", "selfsigned-issuer");
        let ours_ns = ns("ai-gateway");
        let our_secret = ObjectRef::new(Kind::Secret, "open-webui", "client");
        let our_ns_secret = ObjectRef::new(Kind::Secret, "ai-gateway", "tls");
        let fresh = ObjectRef::new(Kind::Policy, "open-webui", "mtls");
        let observed = vec![
            (user_ns.clone(), Observed::Foreign),
            (user_issuer.clone(), Observed::Foreign),
            (ours_ns.clone(), Observed::Ours),
            (our_secret.clone(), Observed::Ours),
            (our_ns_secret.clone(), Observed::Ours),
            (fresh.clone(), Observed::Absent),
        ];
        let d = decide(&observed, &[]);
        assert_eq!(d.reuse, ["open-webui"]);
        assert_eq!(d.conflicts.len(), 1);
        assert!(
            d.conflicts[0].starts_with("ClusterIssuer selfsigned-issuer already exists"),
            "{:?}",
            d.conflicts
        );
        assert!(!d.apply.contains(&user_ns) && !d.apply.contains(&user_issuer));
        assert!(d.apply.contains(&fresh) && d.apply.contains(&ours_ns));
        let gone = deletable(&observed);
        assert_eq!(
            gone,
            vec![ours_ns, our_secret],
            "never the user's namespace or issuer"
        );
        // The cert-manager namespace a scenario declares is reused, never deleted.
        let cm = vec![(ns("cert-manager"), Observed::Foreign)];
        assert_eq!(decide(&cm, &[]).reuse, ["cert-manager"]);
        assert!(deletable(&cm).is_empty());
    }

    /// `--adopt` lets a run overwrite a named object of someone else's, and
    /// it is still never deleted; nothing else changes.
    #[test]
    fn an_adopted_object_is_applied_and_never_deleted() {
        let issuer = ObjectRef::new(Kind::ClusterIssuer, "", "selfsigned-issuer");
        let secret = ObjectRef::new(Kind::Secret, "open-webui", "keep-me");
        let observed = vec![
            (issuer.clone(), Observed::Foreign),
            (secret.clone(), Observed::Foreign),
        ];
        let d = decide(&observed, &[issuer.clone()]);
        assert_eq!(d.adopted, [issuer.clone()]);
        assert_eq!(d.conflicts.len(), 1, "only what was named is adopted");
        assert!(
            d.conflicts[0].ends_with("--adopt Secret/open-webui/keep-me"),
            "{:?}",
            d.conflicts
        );
        // Applied without our label, it is still someone else's at teardown.
        assert!(deletable(&observed).is_empty());
        assert_eq!(
            parse_adopt("ClusterIssuer/selfsigned-issuer"),
            Ok(issuer.clone())
        );
        assert_eq!(parse_adopt(&adopt_arg(&secret)), Ok(secret.clone()));
        for bad in [
            "Secret/keep-me",
            "ClusterIssuer/a/b",
            "Nope/x",
            "Secret//x",
            "",
        ] {
            assert!(parse_adopt(bad).is_err(), "{bad}");
        }
        assert!(check_adopt(&[issuer.clone()], |id| *id == issuer).is_ok());
        let e = check_adopt(&[secret.clone()], |id| *id == issuer).expect_err("not declared");
        assert!(
            e.contains("no scenario of this run declares Secret open-webui/keep-me"),
            "{e}"
        );
    }

    #[test]
    fn labels_mark_ours() {
        let mut json = serde_json::json!({"metadata": {"name": "x", "labels": {"app": "y"}}});
        assert_eq!(observe(Some(&json)), Observed::Foreign);
        label(&mut json, "r1");
        assert_eq!(observe(Some(&json)), Observed::Ours);
        assert_eq!(json["metadata"]["labels"]["app"], "y");
        assert_eq!(json["metadata"]["labels"][RUN], "r1");
        assert_eq!(observe(None), Observed::Absent);
    }
}
