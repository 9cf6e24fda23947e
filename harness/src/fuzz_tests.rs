//! Everything that parses what a server, openssl or nginx printed must not
//! panic, whatever it printed. Property tests feed each parser arbitrary text
//! and text assembled from the fragments it looks for (where slicing bugs
//! hide). `PROPTEST_CASES=N` runs more cases (the README's fuzzing command).

use proptest::prelude::*;

use crate::probe::{Observation, alert_in, openssl};

/// Pieces of openssl `s_client` and HTTP output, glued with arbitrary text.
fn openssl_like() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        Just("HTTP/1.1 ".to_string()),
        Just("HTTP/1.0 200 OK\r\n".to_string()),
        Just("HTTP/1.1 12".to_string()),
        Just("depth=".to_string()),
        Just("depth=0 CN = x\n".to_string()),
        Just(" 0 s:".to_string()),
        Just("Acceptable client certificate CA names\n".to_string()),
        Just("No client certificate CA names sent\n".to_string()),
        Just("New, ".to_string()),
        Just(", Cipher is ".to_string()),
        Just("Verification: ".to_string()),
        Just("Verification error: ".to_string()),
        Just("received fatal alert: ".to_string()),
        Just("tlsv13 alert ".to_string()),
        Just("-----BEGIN CERTIFICATE-----\n".to_string()),
        Just("    0150 - b6 66 ".to_string()),
        Just("é".to_string()),
        Just("\u{1F512}".to_string()),
        Just("\n".to_string()),
        Just("\r\n".to_string()),
        any::<String>(),
        "[0-9]{0,4}".prop_map(|s| s),
    ];
    prop::collection::vec(fragment, 0..24).prop_map(|parts| parts.concat())
}

/// Pieces of nginx configuration (what `nginx -T` prints on a cluster).
fn nginx_like() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        Just("server {".to_string()),
        Just("location ".to_string()),
        Just("= /x ".to_string()),
        Just("~ ^/a( ".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just(";".to_string()),
        Just("listen 443 ssl default_server;".to_string()),
        Just("server_name h;".to_string()),
        Just("proxy_pass https://u/;".to_string()),
        Just("proxy_ssl_session_reuse off;".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("\\".to_string()),
        Just("# c\n".to_string()),
        Just("é".to_string()),
        any::<String>(),
    ];
    prop::collection::vec(fragment, 0..32).prop_map(|parts| parts.concat())
}

/// A real certificate (as a server sends it), made once.
fn certificate_der() -> &'static [u8] {
    static DER: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    DER.get_or_init(|| {
        let key = crate::pki::KeyAlgorithm::Ecdsa(256)
            .generate()
            .expect("key");
        let cert = crate::pki::issue(
            &crate::pki::CertSpec::new("fuzz.example.com", time::Duration::days(1)),
            key,
            None,
        )
        .expect("certificate");
        crate::pki::split_certs(&cert.cert_pem)
            .expect("pem")
            .remove(0)
    })
}

proptest! {
    #[test]
    fn damaged_certificates_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut der = certificate_der().to_vec();
        for (at, byte) in edits {
            let i = at.index(der.len());
            der[i] = byte;
        }
        der.truncate(cut.index(der.len() + 1).max(1));
        let _ = crate::pki::CertInfo::from_der(&der);
        let _ = crate::pki::inspect::oneline_from_der(&der);
        let _ = crate::pki::inspect::public_key_bits(&der);
    }

    #[test]
    fn openssl_output_never_panics(code in any::<i32>(), stdout in openssl_like(), stderr in openssl_like()) {
        let mut o = Observation::default();
        openssl::parse(&mut o, code, &stdout, &stderr);
    }

    #[test]
    fn alerts_and_resets_never_panic(text in openssl_like()) {
        let _ = alert_in(&text);
    }

    #[test]
    fn certificates_and_names_from_the_wire_never_panic(der in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = crate::pki::CertInfo::from_der(&der);
        let _ = crate::pki::inspect::oneline_from_der(&der);
    }

    #[test]
    fn served_nginx_configuration_never_panics(text in nginx_like(), host in "[a-z.]{0,12}", path in "/[a-z/]{0,12}") {
        let routing = crate::substrate::local::nic::routing::Routing::parse([text.as_str()]);
        let _ = routing.route(&host, true, &path);
        let _ = routing.route(&host, false, &path);
    }

    #[test]
    fn nginx_version_lines_never_panic(text in openssl_like()) {
        let _ = crate::substrate::local::nginx::parse_version(&text);
    }
}

#[test]
fn a_status_line_split_inside_a_character_is_no_status() {
    // The case an outside tester found: `HTTP/1.1 12é` panicked the openssl probe.
    let mut o = Observation::default();
    openssl::parse(&mut o, 0, "CONNECTED(00000003)\nHTTP/1.1 12\u{e9}\n", "");
    assert!(o.response.is_none());
}
