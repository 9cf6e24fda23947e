//! NIC v5.5.4's `pkg/apis/configuration/validation/policy_test.go`, the mTLS
//! and policy-type rows: each test is one of NIC's test functions, each row
//! named as NIC names it. NIC's tests call `validateIngressMTLS(…,
//! field.NewPath("ingressMTLS"))`; the harness validates whole Policies, so the
//! messages below carry the `spec.` prefix `ValidatePolicy` gives them.
//!
//! The local substrate is NIC OSS (`PolicyValidationConfig{}`): rows NIC runs
//! with `IsPlus` are asserted for what OSS does with the same Policy, and the
//! policy types it does not model are asserted to be refused with file:line.

use super::fidelity_tests::{
    ca_secret, policy_object, render_nic, spec, state_of, tls_secret, try_render_nic,
};
use super::policy;

fn validate(yaml: &str) -> Result<(), String> {
    policy::validate(&spec(yaml))
}

const SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', \
     and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is \
     '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

const EXACTLY_ONE: &str = "spec: Invalid value: \"\": must specify exactly one of: `accessControl`, `rateLimit`, \
     `ingressMTLS`, `egressMTLS`, `basicAuth`, `apiKey`, `cache`, `cors`, `externalAuth`";

const JWT_ON_OSS: &str = "spec.jwt: Forbidden: jwt secrets are only supported in NGINX Plus";

const OIDC_ON_OSS: &str = "[spec.oidc: Forbidden: OIDC must be enabled via cli argument -enable-oidc to use OIDC policy, \
     spec.oidc: Forbidden: OIDC is only supported in NGINX Plus]";

/// The local substrate's refusal of a Policy whose type it does not render:
/// located in the manifest, naming the type and the substrate to use instead.
fn assert_refused(spec_yaml: &str, policy_type: &str) {
    let yaml = policy_object("p", spec_yaml);
    let err = try_render_nic(&yaml, &[]).expect_err("refused").to_string();
    assert!(
        err.starts_with("test.yaml:")
            && err.contains(&format!(
                "a `{policy_type}` Policy is not rendered by the local substrate"
            ))
            && err.contains("--substrate kind"),
        "{err}"
    );
}

const OIDC: &str = "{authEndpoint: \"https://foo.bar/auth\", tokenEndpoint: \"https://foo.bar/token\", \
     jwksURI: \"https://foo.bar/certs\", redirectURI: /_codexch, endSessionEndpoint: \"https://foo.bar/logout\", \
     postLogoutRedirectURI: /_logout, clientID: random-string, clientSecret: random-secret, scope: openid, \
     accessTokenEnable: true}";

/// `TestValidateIngressMTLS_PassesOnValidInput`.
#[test]
fn validate_ingress_mtls_passes_on_valid_input() {
    for (msg, ing) in [
        ("default", "{clientCertSecret: mtls-secret}"),
        (
            "all parameters with default value",
            "{clientCertSecret: mtls-secret, verifyClient: \"on\", verifyDepth: 1}",
        ),
        (
            "optional parameters",
            "{clientCertSecret: ingress-mtls-secret, verifyClient: optional, verifyDepth: 2}",
        ),
    ] {
        assert_eq!(validate(&format!("ingressMTLS: {ing}")), Ok(()), "{msg}");
    }
}

/// `TestValidateIngressMTLS_FailsOnInvalidInput`.
#[test]
fn validate_ingress_mtls_fails_on_invalid_input() {
    for (msg, ing, error) in [
        (
            "no secret",
            "{verifyClient: \"on\"}",
            "spec.ingressMTLS.clientCertSecret: Required value".to_string(),
        ),
        (
            "invalid secret name",
            "{clientCertSecret: -foo-}",
            format!("spec.ingressMTLS.clientCertSecret: Invalid value: \"-foo-\": {SUBDOMAIN}"),
        ),
        (
            "invalid verify client",
            "{clientCertSecret: mtls-secret, verifyClient: foo}",
            "spec.ingressMTLS.verifyClient: Invalid value: \"foo\": 'foo' contains an invalid NGINX parameter. \
             Accepted parameters are: on, off, optional, optional_no_ca"
                .to_string(),
        ),
        (
            "invalid depth",
            "{clientCertSecret: ingress-mtls-secret, verifyClient: \"on\", verifyDepth: -1}",
            "spec.ingressMTLS.verifyDepth: Invalid value: -1: must be positive".to_string(),
        ),
    ] {
        assert_eq!(validate(&format!("ingressMTLS: {ing}")), Err(error), "{msg}");
    }
}

/// `TestValidateIngressMTLSVerifyClient_PassesOnValidInput` / `_FailsOnInvalidInput`.
#[test]
fn validate_ingress_mtls_verify_client() {
    for ok in ["on", "off", "optional", "optional_no_ca"] {
        let yaml = format!("ingressMTLS: {{clientCertSecret: s, verifyClient: \"{ok}\"}}");
        assert_eq!(validate(&yaml), Ok(()), "{ok}");
    }
    for bad in ["true", "false"] {
        let yaml = format!("ingressMTLS: {{clientCertSecret: s, verifyClient: \"{bad}\"}}");
        let err = validate(&yaml).expect_err(bad);
        assert!(
            err.starts_with(&format!(
                "spec.ingressMTLS.verifyClient: Invalid value: \"{bad}\": '{bad}' contains an invalid NGINX parameter."
            )),
            "{err}"
        );
    }
}

/// `TestValidateEgressMTLS_PassesOnValidInput`.
#[test]
fn validate_egress_mtls_passes_on_valid_input() {
    for (msg, eg) in [
        ("tls secret", "{tlsSecret: mtls-secret}"),
        (
            "verify server set to true",
            "{trustedCertSecret: tls-secret, verifyServer: true, verifyDepth: 2, serverName: false}",
        ),
        ("verify server set to false", "{verifyServer: false}"),
        ("ssl name", "{sslName: foo.com}"),
    ] {
        assert_eq!(validate(&format!("egressMTLS: {eg}")), Ok(()), "{msg}");
    }
}

/// `TestValidateEgressMTLS_FailsOnInvalidInput`.
#[test]
fn validate_egress_mtls_fails_on_invalid_input() {
    for (msg, eg, error) in [
        (
            "verify server set to true",
            "{verifyServer: true}",
            "spec.egressMTLS.trustedCertSecret: Required value: must be set when verifyServer is 'true'"
                .to_string(),
        ),
        (
            "invalid secret name",
            "{trustedCertSecret: -foo-}",
            format!("spec.egressMTLS.trustedCertSecret: Invalid value: \"-foo-\": {SUBDOMAIN}"),
        ),
        (
            "invalid depth",
            "{trustedCertSecret: ingress-mtls-secret, verifyServer: true, verifyDepth: -1}",
            "spec.egressMTLS.verifyDepth: Invalid value: -1: must be positive".to_string(),
        ),
        (
            "invalid name",
            "{sslName: \"foo.com;\"}",
            format!("spec.egressMTLS.sslName: Invalid value: \"foo.com;\": {SUBDOMAIN}"),
        ),
    ] {
        assert_eq!(validate(&format!("egressMTLS: {eg}")), Err(error), "{msg}");
    }
}

/// `TestValidatePolicy_PassesOnValidInput`. Its three other rows run NIC with
/// `IsPlus: true`; the local substrate is NIC OSS, where the same jwt and OIDC
/// Policies are rejected (rows of the next test) and WAF is not rendered.
#[test]
fn validate_policy_passes_on_valid_input() {
    assert_eq!(validate("accessControl: {allow: [127.0.0.1]}"), Ok(()));
    // "use jwt(plus only) policy" and "use OIDC (plus only)": OSS rejects them.
    assert_eq!(
        validate("jwt: {realm: My Product API, secret: my-jwk}"),
        Err(JWT_ON_OSS.into())
    );
    assert_eq!(validate(&format!("oidc: {OIDC}")), Err(OIDC_ON_OSS.into()));
    // "use WAF(plus only) policy": not rendered locally.
    assert_refused("{waf: {enable: true}}", "waf");
}

/// `TestValidatePolicy_FailsOnInvalidInput`.
#[test]
fn validate_policy_fails_on_invalid_input() {
    assert_eq!(validate("{}"), Err(EXACTLY_ONE.into()), "empty policy spec");
    // "multiple policies in spec": NIC would also validate the rateLimit fields,
    // which the local substrate does not model.
    assert_refused(
        "{accessControl: {allow: [127.0.0.1]}, rateLimit: {key: \"${uri}\", zoneSize: 10M, rate: 10r/s}}",
        "rateLimit",
    );
    assert_eq!(
        validate("jwt: {realm: My Product API, secret: my-jwk}"),
        Err(JWT_ON_OSS.into()),
        "jwt(plus only) policy on OSS"
    );
    assert_refused("{waf: {enable: true}}", "waf"); // "WAF(plus only) policy on OSS"
    for msg in [
        "OIDC policy with enable OIDC flag disabled",
        "OIDC policy in OSS",
    ] {
        assert_eq!(
            validate(&format!("oidc: {OIDC}")),
            Err(OIDC_ON_OSS.into()),
            "{msg}"
        );
    }
    assert_refused("{waf: {enable: true}}", "waf"); // "WAF policy with AP disabled"
    // The OIDC field errors are never reached on OSS: the gate check returns first.
    let leeway = OIDC.replace(
        "accessTokenEnable: true",
        "zoneSyncLeeway: -1, accessTokenEnable: false",
    );
    assert_eq!(
        validate(&format!("oidc: {leeway}")),
        Err(OIDC_ON_OSS.into()),
        "OIDC policy with invalid ZoneSyncLeeway"
    );
    let extra = OIDC.replace("accessTokenEnable: true", "authExtraArgs: [\"foo;bar\"]");
    assert_eq!(
        validate(&format!("oidc: {extra}")),
        Err(OIDC_ON_OSS.into()),
        "OIDC policy with invalid AuthExtraArgs"
    );
    // Errors of a type validated before the gate are kept, and the early return
    // skips the "exactly one" error (validatePolicySpec).
    assert_eq!(
        validate("{accessControl: {allow: [invalid]}, jwt: {secret: s}}"),
        Err(format!(
            "[spec.accessControl.allow[0]: Invalid value: \"invalid\": must be a CIDR or IP, {JWT_ON_OSS}]"
        ))
    );
}

/// The OSS outcome of a jwt Policy end to end: the Policy is Invalid with NIC's
/// message, and a VirtualServer referencing it gets NIC's warning and `return 500;`.
#[test]
fn jwt_policy_on_oss_is_invalid_and_its_users_get_500() {
    let yaml = format!(
        "{}{}",
        policy_object("jwt-policy", "{jwt: {realm: My API, secret: jwk-secret}}"),
        "apiVersion: k8s.nginx.org/v1\nkind: VirtualServer\nmetadata: {name: cafe}\nspec:\n  host: cafe.example.com\n  \
         tls: {secret: tls-secret}\n  policies: [{name: jwt-policy}]\n  upstreams: [{name: tea, service: tea-svc, port: 80}]\n  \
         routes: [{path: /, action: {pass: tea}}]\n"
    );
    let out = render_nic(
        &yaml,
        &[
            ("default/tls-secret", tls_secret()),
            ("default/jwk", ca_secret(false)),
        ],
    );
    let policy = state_of(&out, "default/jwt-policy");
    assert_eq!(
        (policy.state.as_str(), policy.message.as_str()),
        (
            "Invalid",
            "Policy default/jwt-policy is invalid and was rejected: spec.jwt: Forbidden: jwt secrets are only supported in NGINX Plus"
        )
    );
    let vs = state_of(&out, "default/cafe");
    assert_eq!(vs.state.as_str(), "Warning");
    assert_eq!(
        vs.warnings,
        ["Policy default/jwt-policy is missing or invalid"]
    );
    let text = super::fidelity_tests::conf(&out, "vs_default_cafe.conf");
    assert!(text.contains("return 500;"), "{text}");
}
