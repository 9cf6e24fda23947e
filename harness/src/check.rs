//! Judging an observation against a check's expectations.
//!
//! Every expectation set must hold. Beyond them, an answer the check did not
//! plan for fails it: a TLS refusal when `rejected` is not expected, or no answer
//! at all. Each failure reads "expected …, got …".

use serde_json::Value;

use crate::probe::{Answer, Observation};
use crate::scenario::Expect;

/// The reasons a check failed; empty when it passed. `trust` is the bundle
/// the check names: the server chain must verify against it unless `expect`
/// says what verification shows (`verification`) or that the server refuses
/// us (`rejected: true`).
pub(crate) fn evaluate(expect: &Expect, trust: Option<&str>, o: &Observation) -> Vec<String> {
    let mut failures = Vec::new();
    let mut fail = |what: &str, expected: String, got: String| {
        failures.push(format!("{what}: expected {expected}, got {got}"));
    };

    if let Some(bundle) = trust
        && expect.verification.is_none()
        && expect.rejected != Some(true)
        && let Some(t) = &o.tls
        && t.verification != "OK"
    {
        fail(
            "server verification",
            format!("the server chain to verify against trust `{bundle}`"),
            if t.verification.is_empty() {
                "no verification result".into()
            } else {
                format!("`{}`", t.verification)
            },
        );
    }

    let answer = o.answer();
    let refused = matches!(answer, Answer::Refused { .. });
    match expect.rejected {
        Some(want) if want != refused => fail(
            "refused at the TLS layer",
            yes_no(want),
            match answer {
                Answer::Refused { alert: Some(a) } => format!("yes (alert: {a})"),
                Answer::Refused { alert: None } => {
                    format!("yes ({})", o.refusal().unwrap_or("no reason given"))
                }
                _ => "no".into(),
            },
        ),
        None if refused => fail(
            "connection",
            "an answer".into(),
            format!(
                "refused at the TLS layer ({})",
                o.refusal().unwrap_or_default()
            ),
        ),
        _ => {}
    }
    if let Some(alert) = &expect.alert {
        let got = o.alert.clone().unwrap_or_else(|| "no alert".into());
        if !got.contains(alert.as_str()) {
            fail("TLS alert", format!("`{alert}`"), format!("`{got}`"));
        }
    }

    if expect.needs_http() {
        match &o.response {
            None => fail(
                "HTTP response",
                "one".into(),
                o.error
                    .clone()
                    .or(o.alert.clone().map(|a| format!("TLS alert {a}")))
                    .unwrap_or_else(|| "none".into()),
            ),
            Some(r) => {
                if let Some(status) = expect.status
                    && r.status != status
                {
                    fail("status", status.to_string(), r.status.to_string());
                }
                for needle in &expect.body_contains {
                    if !r.body.contains(needle.as_str()) {
                        fail("body", format!("to contain `{needle}`"), excerpt(&r.body));
                    }
                }
                for needle in &expect.body_excludes {
                    if r.body.contains(needle.as_str()) {
                        fail(
                            "body",
                            format!("not to contain `{needle}`"),
                            excerpt(&r.body),
                        );
                    }
                }
                if !expect.json.is_empty() || !expect.json_includes.is_empty() {
                    match serde_json::from_str::<Value>(&r.body) {
                        Err(e) => fail("body", "JSON".into(), format!("{e}: {}", excerpt(&r.body))),
                        Ok(body) => {
                            for (path, want) in &expect.json {
                                let got = json_at(&body, path);
                                if got.len() != 1 || got[0] != want {
                                    fail(&format!("JSON `{path}`"), want.to_string(), show(&got));
                                }
                            }
                            for (path, wants) in &expect.json_includes {
                                let got = json_at(&body, path);
                                for want in wants {
                                    if !got.contains(&want) {
                                        fail(
                                            &format!("JSON `{path}`"),
                                            format!("to include {want}"),
                                            show(&got),
                                        );
                                    }
                                }
                            }
                        }
                    }
                }
                for (name, needle) in &expect.headers {
                    let value = r
                        .headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.clone());
                    match value {
                        Some(v) if v.contains(needle.as_str()) => {}
                        other => fail(
                            &format!("header {name}"),
                            format!("to contain `{needle}`"),
                            other.unwrap_or_else(|| "absent".into()),
                        ),
                    }
                }
            }
        }
    } else if let Answer::Nothing { error: Some(e) } = answer
        && expect.rejected.is_none()
    {
        fail("connection", "an answer".into(), e.to_string());
    }

    let needs_tls = expect.protocol.is_some()
        || expect.client_cert_requested.is_some()
        || expect.acceptable_ca_names.is_some()
        || expect.verification.is_some()
        || expect.peer_chain.is_some()
        || expect.verified_chain.is_some();
    if needs_tls {
        match &o.tls {
            None => fail(
                "TLS handshake",
                "one".into(),
                o.error.clone().unwrap_or_else(|| "none".into()),
            ),
            Some(t) => {
                if let Some(p) = &expect.protocol {
                    let got = t.protocol.clone().unwrap_or_else(|| "none".into());
                    if &got != p {
                        fail("protocol", p.clone(), got);
                    }
                }
                if let Some(want) = expect.client_cert_requested
                    && want != t.client_cert_requested
                {
                    fail(
                        "client certificate requested",
                        yes_no(want),
                        yes_no(t.client_cert_requested),
                    );
                }
                if let Some(names) = &expect.acceptable_ca_names
                    && names != &t.acceptable_ca_names
                {
                    fail(
                        "acceptable client CA names",
                        format!("{names:?}"),
                        format!("{:?}", t.acceptable_ca_names),
                    );
                }
                if let Some(v) = &expect.verification {
                    let ok = if v == "OK" {
                        t.verification == "OK"
                    } else {
                        t.verification.contains(v.as_str())
                    };
                    if !ok {
                        fail(
                            "verification",
                            format!("`{v}`"),
                            format!("`{}`", t.verification),
                        );
                    }
                }
                if let Some(chain) = &expect.peer_chain
                    && chain != &t.peer_chain
                {
                    fail(
                        "server chain",
                        format!("{chain:?}"),
                        format!("{:?}", t.peer_chain),
                    );
                }
                if let Some(chain) = &expect.verified_chain
                    && chain != &t.verified_chain
                {
                    fail(
                        "verified chain",
                        format!("{chain:?}"),
                        format!("{:?}", t.verified_chain),
                    );
                }
            }
        }
    }
    failures
}

fn yes_no(b: bool) -> String {
    if b { "yes".into() } else { "no".into() }
}

fn show(values: &[&Value]) -> String {
    match values {
        [] => "nothing at that path".into(),
        [one] => one.to_string(),
        many => format!(
            "[{}]",
            many.iter()
                .map(std::string::ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A short, one-line excerpt of a body for reports.
pub(crate) fn excerpt(body: &str) -> String {
    let flat: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 160 {
        format!("`{}…`", flat.chars().take(160).collect::<String>())
    } else {
        format!("`{flat}`")
    }
}

/// Values at `a.b[0].c` or `data[].id` (every element).
pub(crate) fn json_at<'a>(root: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut current = vec![root];
    for segment in path.split('.') {
        let (key, index) = match segment.find('[') {
            Some(i) => (&segment[..i], Some(segment[i + 1..].trim_end_matches(']'))),
            None => (segment, None),
        };
        if !key.is_empty() {
            current = current.iter().filter_map(|v| v.get(key)).collect();
        }
        match index {
            None => {}
            Some("") => {
                current = current
                    .iter()
                    .filter_map(|v| v.as_array())
                    .flatten()
                    .collect();
            }
            Some(n) => {
                let Ok(n) = n.parse::<usize>() else {
                    return Vec::new();
                };
                current = current.iter().filter_map(|v| v.get(n)).collect();
            }
        }
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{HttpFacts, TlsFacts};

    fn answer(status: u16, body: &str) -> Observation {
        Observation {
            response: Some(HttpFacts {
                status,
                headers: std::collections::BTreeMap::default(),
                body: body.into(),
            }),
            ..Observation::default()
        }
    }

    #[test]
    fn json_paths() {
        let v: Value = serde_json::json!({"data": [{"id": "a"}, {"id": "b"}], "choices": [{"message": {"role": "assistant"}}]});
        assert_eq!(
            json_at(&v, "data[].id"),
            vec![&Value::from("a"), &Value::from("b")]
        );
        assert_eq!(
            json_at(&v, "choices[0].message.role"),
            vec![&Value::from("assistant")]
        );
        assert!(json_at(&v, "nope").is_empty());
    }

    #[test]
    fn status_and_body_must_both_hold() {
        let expect = Expect {
            status: Some(400),
            body_contains: vec!["No required SSL certificate".into()],
            ..Expect::default()
        };
        assert!(
            evaluate(
                &expect,
                None,
                &answer(
                    400,
                    "<title>400 No required SSL certificate was sent</title>"
                )
            )
            .is_empty()
        );
        let wrong = evaluate(&expect, None, &answer(400, "400 The SSL certificate error"));
        assert_eq!(wrong.len(), 1, "{wrong:?}");
        assert!(wrong[0].starts_with("body: expected to contain"));
        assert_eq!(evaluate(&expect, None, &answer(200, "Open WebUI")).len(), 2);
    }

    #[test]
    fn an_unplanned_refusal_fails_the_check() {
        let expect = Expect {
            client_cert_requested: Some(true),
            ..Expect::default()
        };
        let o = Observation {
            tls: Some(TlsFacts {
                client_cert_requested: true,
                ..TlsFacts::default()
            }),
            rejected: true,
            alert: Some("certificate required".into()),
            ..Observation::default()
        };
        let failures = evaluate(&expect, None, &o);
        assert_eq!(failures.len(), 1, "{failures:?}");
        let planned = Expect {
            rejected: Some(true),
            alert: Some("certificate required".into()),
            ..expect
        };
        assert!(evaluate(&planned, None, &o).is_empty());
    }

    fn verified(result: &str) -> Observation {
        Observation {
            tls: Some(TlsFacts {
                verification: result.into(),
                ..TlsFacts::default()
            }),
            ..answer(200, "Open WebUI")
        }
    }

    #[test]
    fn a_named_trust_must_verify_the_server() {
        let expect = Expect {
            status: Some(200),
            ..Expect::default()
        };
        let unverified = verified("unable to get local issuer certificate");
        let failures = evaluate(&expect, Some("scenario-ca"), &unverified);
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(
            failures[0].contains("trust `scenario-ca`")
                && failures[0].contains("unable to get local issuer certificate"),
            "{failures:?}"
        );
        assert!(evaluate(&expect, Some("scenario-ca"), &verified("OK")).is_empty());
        // Without a trust (an `insecure: true` check) the result is not judged.
        assert!(evaluate(&expect, None, &unverified).is_empty());
        // A check that expects the failure says so.
        let expects_failure = Expect {
            verification: Some("unable to get local issuer".into()),
            ..expect.clone()
        };
        assert!(evaluate(&expects_failure, Some("scenario-ca"), &unverified).is_empty());
        let expects_refusal = Expect {
            rejected: Some(true),
            ..Expect::default()
        };
        let refused = Observation {
            rejected: true,
            ..unverified
        };
        assert!(evaluate(&expects_refusal, Some("scenario-ca"), &refused).is_empty());
    }

    #[test]
    fn no_answer_is_a_failure_not_a_pass() {
        let expect = Expect {
            status: Some(502),
            ..Expect::default()
        };
        let o = Observation {
            error: Some("connect refused".into()),
            ..Observation::default()
        };
        assert_eq!(evaluate(&expect, None, &o).len(), 1);
    }
}
